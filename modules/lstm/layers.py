"""Keras layers of the LSTM family that tf_keras lacks.

All work on the dense [batch, SEQUENCE_LENGTH] character ids Transform
emits, with ops TFLite has as builtins (integer arithmetic, select, sums,
gathers), so the whole model converts from that one input.
"""
from typing import List, Sequence
import zlib

import numpy as np
import tensorflow as tf
import tf_keras

from modules.lstm import features

# Odd multiplier of the rolling n-gram hash. The running value stays below
# num_buckets * _HASH_MULTIPLIER + the largest key (_OOV_KEY), far inside
# int64 for any bucket count this family uses.
_HASH_MULTIPLIER = 1_000_003
# The key of the OOV id: above every character's (CRC-32 + 1 <= 2^32).
_OOV_KEY = 2 ** 32 + 1


def character_keys(vocabulary: Sequence[bytes]) -> np.ndarray:
  """[char_id_count] int64: the key of each character id, fixed by the
  character itself rather than by its place in this vocabulary.

  Transform orders its vocabulary by frequency over the training window, so
  a character's id changes from span to span; n-grams hashed from ids would
  put another n-gram in every bucket of a warm-started table. Hashed from
  these keys (CharacterKeys), a bucket holds the same n-grams whatever the
  vocabulary. Padding keeps key 0 (PADDING_ID), each vocabulary entry gets
  the CRC-32 of its UTF-8 bytes plus 1, and the OOV id one key above them all.
  """
  return np.array([features.PADDING_ID] + [zlib.crc32(token) + 1 for token in vocabulary]
                  + [_OOV_KEY], dtype=np.int64)


class CharacterKeys(tf_keras.layers.Layer):
  """Character ids -> their keys (`character_keys`), [batch, T] -> [batch, T].

  The key table is a non-trainable weight, so the SavedModel carries it and
  a model rebuilt from code takes it back with the other weights (the
  TFLite adapter), and a warm start remaps it by key like the character
  embedding (to the same keys). `keys` initialises it when training.
  """

  def __init__(self, char_id_count: int, keys=None, **kwargs):
    super().__init__(**kwargs)
    self.char_id_count = char_id_count
    self._initial_keys = keys

  def build(self, input_shape):
    initial = self._initial_keys
    self.key_table = self.add_weight(
        name="keys", shape=(self.char_id_count,), dtype=tf.int64, trainable=False,
        initializer=(tf_keras.initializers.Constant(initial) if initial is not None
                     else "zeros"))
    super().build(input_shape)

  def call(self, ids):
    return tf.gather(self.key_table, ids)

  def get_config(self):
    return {**super().get_config(), "char_id_count": self.char_id_count}


class CharNGramHash(tf_keras.layers.Layer):
  """Character keys (CharacterKeys) -> ids of their hashed n-grams
  (consecutive characters).

  [batch, T] -> [batch, T - n + 1], or [batch, T] with `same_length` (the
  n-gram starting at each character; the last n - 1 positions are padded
  with 0), so the n-grams line up with the characters as a sequence input.
  An n-gram touching padding gets id 0 so a following
  `Embedding(mask_zero=True)` masks it; the others get ids in
  1..num_buckets. Hashing inside the model (not a vocabulary in Transform)
  keeps the serving and TFLite input the character ids alone.
  """

  def __init__(self, n: int, num_buckets: int, same_length: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.n = n
    self.num_buckets = num_buckets
    self.same_length = same_length

  def call(self, keys):
    width = keys.shape[1] - self.n + 1
    hashed = tf.zeros_like(keys[:, :width])
    valid = tf.ones_like(hashed, dtype=tf.bool)
    for offset in range(self.n):
      part = keys[:, offset:offset + width]
      hashed = tf.math.floormod(hashed * _HASH_MULTIPLIER + part, self.num_buckets)
      valid = tf.logical_and(valid, tf.not_equal(part, features.PADDING_ID))
    hashed = tf.where(valid, hashed + 1, tf.zeros_like(hashed))
    if self.same_length:
      hashed = tf.pad(hashed, [[0, 0], [0, self.n - 1]])
    return hashed

  def get_config(self):
    return {**super().get_config(), "n": self.n, "num_buckets": self.num_buckets,
            "same_length": self.same_length}


def first_occurrences(ids):
  """`ids` with every repeat of an id within its row set to 0 (padding).

  [batch, T] -> [batch, T]: a position keeps its id when no earlier position
  of the row holds the same one, so summing over the row counts each
  distinct id once (a bag of presence, not of counts). Pairwise comparison
  ([batch, T, T] booleans) rather than a sort: EQUAL, LOGICAL_AND and
  REDUCE_ANY are TFLite builtins.
  """
  length = ids.shape[1]
  earlier = tf.constant(np.tril(np.ones([length, length], bool), k=-1))
  repeated = tf.reduce_any(
      tf.logical_and(tf.equal(tf.expand_dims(ids, 2), tf.expand_dims(ids, 1)), earlier), axis=2)
  return tf.where(repeated, tf.zeros_like(ids), ids)


class NaiveBayesNGramLogit(tf_keras.layers.Layer):
  """Logistic regression over the char n-grams present in a review, each
  scaled by its naive-Bayes log-count ratio (NBSVM; Wang and Manning, 2012).

  [batch, T] char keys (CharacterKeys) -> [batch, 1] logit: bias + sum over the distinct
  hashed n-grams g of each order of weight[g] * ratio[g]. The ratios are
  fixed statistics of the training reviews (`adapt`): log of the smoothed
  share of positive reviews' n-gram occurrences that are g over the same
  share for negative reviews, with reviews counted once per n-gram. Only
  the weights train, under an L2 penalty, so an n-gram's evidence counts
  as much as the naive-Bayes ratio says unless the data argue otherwise.
  A bucket no training review filled keeps ratio 0 (as an n-gram outside a
  fitted vocabulary contributes nothing), and so does padding (id 0).

  `folded=True` builds the serving form: one table per order holding
  weight * ratio (`folded_weights` of the trained layer), so the export
  stores and gathers one table per order instead of two and computes the
  same logit (the same float32 products, summed in the same order). The
  folded form has nothing to train or count.
  """

  def __init__(self, orders, num_buckets: int, l2: float, folded: bool = False, **kwargs):
    super().__init__(**kwargs)
    self.orders = tuple(orders)
    self.num_buckets = num_buckets
    self.l2 = l2
    self.folded = folded
    self.hashes = [CharNGramHash(n, num_buckets, name=f"char{n}_hash") for n in self.orders]

  def build(self, input_shape):
    self.ratios, self.weights_by_order = [], []
    for n in self.orders:
      if self.folded:
        self.weights_by_order.append(self.add_weight(
            name=f"char{n}_weight_times_ratio", shape=(self.num_buckets + 1,),
            initializer="zeros", trainable=False))
        continue
      self.ratios.append(self.add_weight(
          name=f"char{n}_log_count_ratio", shape=(self.num_buckets + 1,),
          initializer="zeros", trainable=False))
      self.weights_by_order.append(self.add_weight(
          name=f"char{n}_weight", shape=(self.num_buckets + 1,), initializer="zeros",
          regularizer=tf_keras.regularizers.L2(self.l2)))
    self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros",
                                trainable=not self.folded)
    super().build(input_shape)

  def present_ngrams(self, keys):
    """Per order, [batch, T - n + 1] hashed n-gram ids, repeats within a review zeroed."""
    return [first_occurrences(hash_(keys)) for hash_ in self.hashes]

  def call(self, keys):
    logit = self.bias
    for order, ngrams in enumerate(self.present_ngrams(keys)):
      evidence = tf.gather(self.weights_by_order[order], ngrams)
      if not self.folded:
        evidence = evidence * tf.gather(self.ratios[order], ngrams)
      logit = logit + tf.reduce_sum(evidence, axis=1, keepdims=True)
    return logit

  def folded_weights(self) -> List[np.ndarray]:
    """The weights of this layer's serving form (`folded=True`): per order,
    weight * ratio, then the bias."""
    if self.folded:
      raise ValueError(f"{self.name} is already folded")
    return [weight.numpy() * ratio.numpy()
            for weight, ratio in zip(self.weights_by_order, self.ratios)] + [self.bias.numpy()]

  def adapt(self, keys: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> None:
    """Sets the log-count ratios from training reviews' character keys and 0/1 labels."""
    if self.folded:
      raise ValueError(f"{self.name} is folded for serving and has no ratios to count: "
                       "adapt the training form (folded=False), then fold its weights")
    if not self.built:
      self.build(keys.shape)
    labels = np.asarray(labels).reshape(-1)
    if not ((labels == 0) | (labels == 1)).all() or len(set(labels.tolist())) < 2:
      raise ValueError("NaiveBayesNGramLogit.adapt needs labels of both classes, 0 and 1; "
                       f"got the values {sorted(set(labels.tolist()))}")
    counts = [np.zeros([2, self.num_buckets + 1]) for _ in self.orders]
    for start in range(0, len(keys), batch_size):
      batch_labels = labels[start:start + batch_size].astype(int)
      for order_counts, ngrams in zip(counts, self.present_ngrams(keys[start:start + batch_size])):
        ngrams = ngrams.numpy()
        for label in (0, 1):
          order_counts[label] += np.bincount(ngrams[batch_labels == label].reshape(-1),
                                             minlength=self.num_buckets + 1)
    for order_counts, ratio in zip(counts, self.ratios):
      order_counts[:, 0] = 0
      seen = order_counts.sum(axis=0) > 0
      smoothed = (order_counts + 1.0) * seen
      shares = smoothed / smoothed.sum(axis=1, keepdims=True)
      log_ratio = np.log(shares[1], where=seen, out=np.zeros(seen.shape)) - np.log(
          shares[0], where=seen, out=np.zeros(seen.shape))
      ratio.assign(log_ratio.astype(np.float32))

  def get_config(self):
    return {**super().get_config(), "orders": self.orders, "num_buckets": self.num_buckets,
            "l2": self.l2, "folded": self.folded}


class MaskedSqrtNPooling(tf_keras.layers.Layer):
  """Sum over the unmasked steps divided by the square root of their count.

  [batch, T, d] -> [batch, d]. Dividing by sqrt(count) rather than count
  keeps some evidence of length, as an L2-normalised bag of n-grams (TF-IDF)
  does: bags of char n-grams pooled this way scored eval AUC 0.925 on the
  reviews, against 0.913 pooled by the mean (an early comparison made on
  eval, before the validation split existed).
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


class MaskedAttentionPooling(tf_keras.layers.Layer):
  """Attention-weighted sum over the unmasked steps of a sequence.

  [batch, T, d] -> [batch, d]. Each step gets the score
  v . tanh(W h_t + b); the weights are the softmax of the scores over the
  unmasked steps, so the classifier reads the steps that carry sentiment
  ("不好", "推荐") wherever in the review they are, where a mean dilutes them
  with the rest of the review and the last state forgets them. A review
  with no unmasked step pools to zeros. Needs a mask upstream.
  """

  def __init__(self, units: int = 64, **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.supports_masking = True

  def build(self, input_shape):
    dim = input_shape[-1]
    self.projection = self.add_weight(name="projection", shape=(dim, self.units),
                                      initializer="glorot_uniform")
    self.projection_bias = self.add_weight(name="projection_bias", shape=(self.units,),
                                           initializer="zeros")
    self.score = self.add_weight(name="score", shape=(self.units, 1),
                                 initializer="glorot_uniform")
    super().build(input_shape)

  def call(self, inputs, mask=None):
    hidden = tf.tanh(tf.tensordot(inputs, self.projection, axes=1) + self.projection_bias)
    scores = tf.squeeze(tf.tensordot(hidden, self.score, axes=1), axis=-1)
    weights = tf.cast(mask, inputs.dtype)
    # Masked steps get a large negative score (exp underflows to 0) and are
    # zeroed again after the softmax, for the all-masked row.
    scores = scores + (weights - 1.0) * 1e9
    attention = tf.nn.softmax(scores, axis=-1) * weights
    return tf.reduce_sum(inputs * tf.expand_dims(attention, -1), axis=1)

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    return {**super().get_config(), "units": self.units}


class ChunkedBidirectionalGRU(tf_keras.layers.Bidirectional):
  """`Bidirectional(GRU(return_sequences=True))` computed in chunks of steps, for TFLite.

  The same layer to Keras and to a checkpoint (a Bidirectional with the same
  variables, so a trained Bidirectional GRU's weights load into it), the
  same outputs (a masked step keeps the state and outputs zeros; the
  backward GRU reads the sequence reversed and its outputs are put back in
  order; the two are concatenated); only the graph differs. Why: TFLite
  lowers Keras' recurrent loop to a WHILE loop in which every step writes
  its output into the whole [T, batch, units] sequence by slicing and
  concatenating it, and that sequence travels between the loop's subgraphs
  each step; at batch 1 this copying, not the GRU's arithmetic, was half the
  LSTM family's TFLite latency. Here one iteration computes
  `steps_per_iteration` steps written out in full and stores them with one
  write, and the input projection of every step is one matmul before the
  loop. Only the GRU this family trains is supported (reset_after, a bias,
  tanh and sigmoid, outputs concatenated); anything else is refused.
  """

  def __init__(self, layer: tf_keras.layers.GRU, steps_per_iteration: int, **kwargs):
    super().__init__(layer, **kwargs)
    for cell in (self.forward_layer.cell, self.backward_layer.cell):
      if not (isinstance(cell, tf_keras.layers.GRUCell) and cell.reset_after
              and cell.use_bias and cell.activation is tf_keras.activations.tanh
              and cell.recurrent_activation is tf_keras.activations.sigmoid):
        raise ValueError(f"{self.name}: only a GRU with reset_after, a bias, tanh and "
                         f"sigmoid can be computed in chunks, not {cell!r}")
    if not self.return_sequences or self.merge_mode != "concat":
      raise ValueError(f"{self.name}: needs return_sequences=True and merge_mode='concat'")
    self.steps_per_iteration = steps_per_iteration

  # Plain Python over static shapes: AutoGraph would only re-write the step
  # loop, at a cost of seconds per trace.
  @tf.autograph.experimental.do_not_convert
  def call(self, inputs, training=None, mask=None, initial_state=None, constants=None):
    del training  # No dropout in this GRU: the same in training and inference.
    if initial_state is not None or constants is not None:
      raise ValueError(f"{self.name}: starts from zero states, with no constants")
    length = inputs.shape[1]
    if length % self.steps_per_iteration:
      raise ValueError(f"{self.name}: a sequence of {length} steps does not split into "
                       f"chunks of {self.steps_per_iteration}")
    if mask is None:
      mask = tf.ones(tf.shape(inputs)[:2], tf.bool)
    forward = self._scan(inputs, mask, self.forward_layer.cell)
    backward = self._scan(tf.reverse(inputs, [1]), tf.reverse(mask, [1]),
                          self.backward_layer.cell)
    return tf.concat([forward, tf.reverse(backward, [1])], axis=-1)

  @tf.autograph.experimental.do_not_convert
  def _scan(self, inputs, mask, cell):
    """[batch, T, d] -> [batch, T, units], one GRU direction left to right."""
    length, chunk, units = inputs.shape[1], self.steps_per_iteration, cell.units
    iterations = length // chunk
    input_bias, recurrent_bias = tf.unstack(cell.bias)
    # Time-major: [T, batch, 3 units] projections and [T, batch, 1] keep flags.
    projected = tf.transpose(tf.tensordot(inputs, cell.kernel, axes=1) + input_bias, [1, 0, 2])
    keep = tf.expand_dims(tf.transpose(mask), -1)

    def iteration(index, state, chunks):
      start = tf.stack([index * chunk, 0, 0])
      chunk_inputs = tf.slice(projected, start, [chunk, -1, -1])
      chunk_keep = tf.slice(keep, start, [chunk, -1, -1])
      outputs = []
      for step in range(chunk):
        input_z, input_r, input_h = tf.split(chunk_inputs[step], 3, axis=-1)
        recurrent = tf.matmul(state, cell.recurrent_kernel) + recurrent_bias
        recurrent_z, recurrent_r, recurrent_h = tf.split(recurrent, 3, axis=-1)
        update = tf.sigmoid(input_z + recurrent_z)
        reset = tf.sigmoid(input_r + recurrent_r)
        candidate = tf.tanh(input_h + reset * recurrent_h)
        new_state = update * state + (1.0 - update) * candidate
        outputs.append(tf.where(chunk_keep[step], new_state, tf.zeros_like(new_state)))
        state = tf.where(chunk_keep[step], new_state, state)
      return index + 1, state, chunks.write(index, tf.stack(outputs))

    chunks = tf.TensorArray(inputs.dtype, size=iterations,
                            element_shape=tf.TensorShape([chunk, inputs.shape[0], units]))
    initial_state = tf.zeros([tf.shape(inputs)[0], units], inputs.dtype)
    _, _, chunks = tf.while_loop(lambda index, *_: index < iterations, iteration,
                                 (tf.constant(0), initial_state, chunks))
    return tf.transpose(tf.reshape(chunks.stack(), [length, -1, units]), [1, 0, 2])

  def get_config(self):
    return {**super().get_config(), "steps_per_iteration": self.steps_per_iteration}
