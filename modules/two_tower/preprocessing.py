"""tf.Transform preprocessing for the two-tower family.

User and item ids go through vocabularies analysed on the train split, so an
id's index is stable within a model version and an id the model never saw in
training maps to the single out-of-vocabulary bucket (index = vocabulary size)
instead of failing: the serving model answers such users with popular items.
The history's item ids go through the same item vocabulary; a history item
outside it (and the padding) becomes PAD, which the user tower ignores.

Genres come from a fixed 19-name list (the schema pins the same domain), so
they become a constant-width multi-hot vector without an analyser; release
years and ages go into fixed buckets for the same reason. Gender, occupation,
the zip code's first character (US region; MovieLens also has Canadian
codes) and title words get vocabularies with one out-of-vocabulary bucket.
"""
import tensorflow as tf
import tensorflow_transform as tft

from modules.common import slice_features
from modules.two_tower import features
from modules.two_tower.movielens import HISTORY_LENGTH

# Index of "no item" in the transformed history and "no word" in the title.
PAD = -1
TITLE_WORDS = 6
# Release years: 0 = unknown, then 5-year buckets from before 1925 to 2000+.
YEAR_BUCKETS = 18
_FIRST_YEAR, _YEARS_PER_BUCKET = 1920, 5
# Ages as in MovieLens-1M: unknown (0), under 18, 18-24, 25-34, 35-44,
# 45-49, 50-55, 56+.
AGE_BOUNDARIES = (1, 18, 25, 35, 45, 50, 56)
AGE_BUCKETS = len(AGE_BOUNDARIES) + 1
# Title words seen in fewer train examples than this map to the OOV bucket.
MIN_WORD_EXAMPLES = 5


def genres_multi_hot(genres: tf.SparseTensor) -> tf.Tensor:
  """[batch, 19] float multi-hot of genre names; unknown names are dropped."""
  names = tf.sparse.to_dense(genres, default_value="")
  matches = tf.equal(names[:, :, tf.newaxis],
                     tf.constant(features.GENRE_NAMES)[tf.newaxis, tf.newaxis, :])
  return tf.cast(tf.reduce_any(matches, axis=1), tf.float32)


def year_bucket(years: tf.Tensor) -> tf.Tensor:
  """0 for an unknown (0) year, else 1 + the 5-year bucket, clipped."""
  bucket = 1 + tf.clip_by_value((years - _FIRST_YEAR) // _YEARS_PER_BUCKET, 0,
                                YEAR_BUCKETS - 2)
  return tf.where(years > 0, bucket, tf.zeros_like(bucket))


def dense_indices(indices: tf.SparseTensor, width: int) -> tf.Tensor:
  """[batch, width] int64: the first `width` values of each row, PAD after."""
  batch = tf.shape(indices, out_type=tf.int64)[0]
  kept = tf.sparse.slice(indices, [0, 0], [batch, width])
  dense = tf.sparse.to_dense(tf.sparse.reset_shape(kept, [batch, width]), default_value=PAD)
  return tf.ensure_shape(dense, [None, width])


def title_words(titles: tf.Tensor) -> tf.SparseTensor:
  """Lower-case words of each title, without the "(1995)" year suffix."""
  text = tf.strings.regex_replace(tf.strings.lower(titles), r"\(\d{4}\)", " ")
  text = tf.strings.regex_replace(text, r"[^a-z0-9]+", " ")
  return tf.strings.split(tf.strings.strip(text)).to_sparse()


def history_bucket(history_lengths: tf.Tensor) -> tf.Tensor:
  """The name of each history length's bucket (features.HISTORY_BUCKET_NAMES)."""
  return slice_features.named_buckets(history_lengths,
                                      features.HISTORY_BUCKET_BOUNDARIES,
                                      features.HISTORY_BUCKET_NAMES)


def popularity_bucket(item_ranks: tf.Tensor, items_seen: tf.Tensor) -> tf.Tensor:
  """The name of each item's popularity bucket from its index in the item
  vocabulary, which TFT orders by training count (0: the most frequent; an
  item training never saw: `items_seen`, the out-of-vocabulary index)."""
  share = tf.cast(item_ranks, tf.float32) / tf.cast(items_seen, tf.float32)
  return slice_features.named_buckets(share, features.POPULARITY_BUCKET_BOUNDARIES,
                                      features.POPULARITY_BUCKET_NAMES)


def _vocabulary_index(values: tf.Tensor, name: str) -> tf.Tensor:
  return tft.compute_and_apply_vocabulary(values, num_oov_buckets=1, vocab_filename=name)


def preprocessing_fn(inputs):
  """Model inputs of both towers; rating and timestamp already shaped the
  split and the history, so the model does not read them."""
  def flat(key):
    return tf.reshape(inputs[key], [-1])

  item_vocabulary = tft.vocabulary(flat(features.ITEM_ID), vocab_filename=features.ITEM_VOCAB)
  history = tft.apply_vocabulary(inputs[features.HISTORY], item_vocabulary,
                                 default_value=PAD)
  words = tft.compute_and_apply_vocabulary(
      title_words(flat(features.TITLE)), frequency_threshold=MIN_WORD_EXAMPLES,
      num_oov_buckets=1, vocab_filename=features.TITLE_VOCAB)
  xf = features.transformed_name
  items = tft.apply_vocabulary(flat(features.ITEM_ID), item_vocabulary, num_oov_buckets=1)
  return {
      xf(features.USER_ID): _vocabulary_index(flat(features.USER_ID), features.USER_VOCAB),
      xf(features.ITEM_ID): items,
      xf(features.GENRES_KEY): genres_multi_hot(inputs[features.GENRES_KEY]),
      xf(features.RELEASE_YEAR): year_bucket(flat(features.RELEASE_YEAR)),
      xf(features.TITLE): dense_indices(words, TITLE_WORDS),
      xf(features.USER_AGE): tft.apply_buckets(
          flat(features.USER_AGE), tf.constant([AGE_BOUNDARIES], tf.int64)),
      xf(features.USER_GENDER): _vocabulary_index(flat(features.USER_GENDER),
                                                  features.GENDER_VOCAB),
      xf(features.USER_OCCUPATION): _vocabulary_index(flat(features.USER_OCCUPATION),
                                                      features.OCCUPATION_VOCAB),
      xf(features.USER_ZIP): _vocabulary_index(tf.strings.substr(flat(features.USER_ZIP), 0, 1),
                                               features.ZIP_VOCAB),
      xf(features.HISTORY): dense_indices(history, HISTORY_LENGTH),
      xf(features.HISTORY_LENGTH): flat(features.HISTORY_LENGTH),
      features.HISTORY_BUCKET_KEY: history_bucket(flat(features.HISTORY_LENGTH)),
      # From the vocabulary's order alone: an analyzer over its output (the
      # ranks' quantiles) would need a second analysis phase, which TFT 1.16
      # cannot run under this Beam (its deep copy of the input fails).
      features.POPULARITY_BUCKET_KEY: popularity_bucket(
          items, tft.experimental.get_vocabulary_size_by_name(features.ITEM_VOCAB)),
  }
