"""Brute-force retrieval over every vocabulary item, in plain TensorFlow.

The candidate embeddings of all items are computed once after training and
saved in the model as variables, so serving is one matmul, a mask and
tf.math.top_k: no custom ops, nothing outside the SavedModel. The same scores
back both serving outputs, so the rank TFMA measures is the rank TF Serving
would serve:

* top_k: the K best unseen items of each user;
* rank: how many unseen items score above a given (true) item.

A user's train items are masked out (the reference recall excludes them too).
Users outside the vocabulary get items by train popularity instead of an
error or the untrained out-of-vocabulary embedding.
"""
import numpy as np
import tensorflow as tf

from modules.two_tower.catalog import Catalog

# Score of a masked (already seen) item: finite, so outputs stay finite even
# for a user who has seen almost everything, and below any real score.
MASKED_SCORE = -1e9


class RetrievalIndex(tf.Module):
  """Candidate embeddings, item ids, popularity and seen items, as variables."""

  def __init__(self, candidate_embeddings: np.ndarray, item_ids: np.ndarray,
               catalog: Catalog):
    super().__init__(name="retrieval_index")
    self.candidates = tf.Variable(candidate_embeddings.astype(np.float32), trainable=False)
    self.item_ids = tf.Variable(item_ids.astype(object), trainable=False, dtype=tf.string)
    # Log train count, plus a tiny index term so ties keep vocabulary order.
    popularity = np.log(catalog.item_counts) - np.arange(catalog.num_items) * 1e-6
    self.popularity = tf.Variable(popularity.astype(np.float32), trainable=False)
    self.seen_row_splits = tf.Variable(catalog.seen_row_splits, trainable=False)
    self.seen_items = tf.Variable(catalog.seen_items, trainable=False)

  def scores(self, user_index: tf.Tensor, queries: tf.Tensor) -> tf.Tensor:
    """[batch, num_items] scores; seen items masked, unknown users by popularity."""
    return masked_scores(self, user_index, queries)

  def top_k(self, scores: tf.Tensor, k: int):
    """(item ids [batch, k] strings, scores [batch, k]) of the best items."""
    return top_k(self, scores, k)

  def rank(self, scores: tf.Tensor, item_index: tf.Tensor) -> tf.Tensor:
    """0-based rank of each true item among the user's unseen items, float32.

    An item the user already saw in train, or one outside the vocabulary,
    cannot be recommended: its rank is the catalogue size, a certain miss.
    """
    item_index = tf.reshape(item_index, [-1])
    num_items = tf.shape(scores, out_type=tf.int64)[1]
    in_vocab = item_index < num_items
    true_scores = tf.gather(scores, tf.minimum(item_index, num_items - 1), batch_dims=1)
    above = tf.reduce_sum(tf.cast(scores > true_scores[:, tf.newaxis], tf.int64), axis=1)
    recommendable = in_vocab & (true_scores > MASKED_SCORE)
    return tf.cast(tf.where(recommendable, above, num_items), tf.float32)


def masked_scores(index, user_index: tf.Tensor, queries: tf.Tensor) -> tf.Tensor:
  """[batch, num_items] scores of `queries`; seen items masked, unknown users
  scored by popularity.

  `index` is a RetrievalIndex or the object tf.saved_model restores from one
  (same variables, none of the Python attributes), so the TFLite exporter
  converts this very function. It uses only ops TFLite has as builtins: the
  seen items are gathered from the CSR arrays with plain index arithmetic
  (no RaggedTensor) and masked with scatter_nd (no tensor_scatter_nd_update).
  """
  user_index = tf.reshape(user_index, [-1])
  personal = tf.matmul(queries, index.candidates, transpose_b=True)
  # Catalog rows: every vocabulary user, then the out-of-vocabulary one.
  num_users = tf.shape(index.seen_row_splits, out_type=tf.int64)[0] - 2
  known = user_index < num_users
  scores = tf.where(known[:, tf.newaxis], personal,
                    tf.broadcast_to(index.popularity[tf.newaxis, :], tf.shape(personal)))
  starts = tf.gather(index.seen_row_splits, user_index)
  lengths = tf.gather(index.seen_row_splits, user_index + 1) - starts
  rows = tf.repeat(tf.range(tf.shape(user_index, out_type=tf.int64)[0]), lengths)
  within_row = tf.range(tf.reduce_sum(lengths)) - tf.gather(
      tf.cumsum(lengths, exclusive=True), rows)
  seen = tf.gather(index.seen_items, tf.gather(starts, rows) + within_row)
  mask = tf.scatter_nd(tf.stack([rows, seen], axis=1), tf.ones_like(seen, tf.float32),
                       tf.shape(scores, out_type=tf.int64))
  return tf.where(mask > 0, tf.constant(MASKED_SCORE), scores)


def top_k(index, scores: tf.Tensor, k: int):
  """(item ids [batch, k] strings, scores [batch, k]) of the best items."""
  top = tf.math.top_k(scores, k=k)
  return tf.gather(index.item_ids, top.indices), top.values
