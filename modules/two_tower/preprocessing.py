"""tf.Transform preprocessing for the two-tower family.

User and item ids go through vocabularies analysed on the train split, so an
id's index is stable within a model version and an id the model never saw in
training maps to the single out-of-vocabulary bucket (index = vocabulary size)
instead of failing: the serving model answers such users with popular items.
Genres come from a fixed 19-name list (the schema pins the same domain), so
they become a constant-width multi-hot vector without an analyser.
"""
import tensorflow as tf
import tensorflow_transform as tft

from modules.two_tower import features


def genres_multi_hot(genres: tf.SparseTensor) -> tf.Tensor:
  """[batch, 19] float multi-hot of genre names; unknown names are dropped."""
  names = tf.sparse.to_dense(genres, default_value="")
  matches = tf.equal(names[:, :, tf.newaxis],
                     tf.constant(features.GENRE_NAMES)[tf.newaxis, tf.newaxis, :])
  return tf.cast(tf.reduce_any(matches, axis=1), tf.float32)


def preprocessing_fn(inputs):
  """Vocabulary indices of user and item ids, multi-hot genres; the rest is
  unused by the model (rating and timestamp already shaped the split)."""
  user_ids = tf.reshape(inputs[features.USER_ID], [-1])
  item_ids = tf.reshape(inputs[features.ITEM_ID], [-1])
  return {
      features.transformed_name(features.USER_ID): tft.compute_and_apply_vocabulary(
          user_ids, num_oov_buckets=1, vocab_filename=features.USER_VOCAB),
      features.transformed_name(features.ITEM_ID): tft.compute_and_apply_vocabulary(
          item_ids, num_oov_buckets=1, vocab_filename=features.ITEM_VOCAB),
      features.transformed_name(features.GENRES_KEY): genres_multi_hot(
          inputs[features.GENRES_KEY]),
  }
