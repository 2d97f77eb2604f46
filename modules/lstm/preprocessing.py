"""tf.Transform preprocessing for the LSTM family.

Reviews are split into Unicode characters (Chinese has no spaces to split on,
and a character vocabulary stays small: a few thousand entries), mapped to
ids through a vocabulary computed over the training split, then cut or padded
to a fixed length. The same graph serves single raw requests, so it must give
ids for any string: empty, very long, unseen characters, invalid UTF-8.
"""
import tensorflow as tf
import tensorflow_transform as tft

from modules.common import slice_features
from modules.lstm import features


def char_ids(chars: tf.RaggedTensor) -> tf.Tensor:
  """[batch, (chars)] characters -> [batch, SEQUENCE_LENGTH] int64 ids.

  Only the first SEQUENCE_LENGTH characters are looked up (and counted for
  the vocabulary), so a 10,000-character request costs no more than a
  200-character one past the split.
  """
  ids = tft.compute_and_apply_vocabulary(
      chars[:, :features.SEQUENCE_LENGTH],
      frequency_threshold=features.CHAR_FREQUENCY_THRESHOLD,
      num_oov_buckets=features.NUM_OOV_BUCKETS,
      vocab_filename=features.CHAR_VOCABULARY)
  shifted = ids + 1  # Frees id 0 for padding.
  return shifted.to_tensor(default_value=features.PADDING_ID,
                           shape=[None, features.SEQUENCE_LENGTH])


def length_bucket(lengths: tf.Tensor) -> tf.Tensor:
  """[batch] lengths in characters -> [batch] names of their length bucket."""
  return slice_features.named_buckets(lengths,
                                      features.LENGTH_BUCKET_BOUNDARIES,
                                      features.LENGTH_BUCKET_NAMES)


def preprocessing_fn(inputs):
  """Character ids and length bucket of the review; the label as int64.

  Invalid UTF-8 becomes U+FFFD characters rather than failing the request.
  """
  text = tf.reshape(inputs[features.TEXT_KEY], [-1])
  chars = tf.strings.unicode_split(text, "UTF-8", errors="replace")
  return {
      features.transformed_name(features.TEXT_KEY): char_ids(chars),
      features.LENGTH_BUCKET_KEY: length_bucket(chars.row_lengths()),
      features.LABEL_KEY: tf.cast(inputs[features.LABEL_KEY], tf.int64),
  }
