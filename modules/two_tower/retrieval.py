"""Brute-force retrieval over every vocabulary item, in plain TensorFlow.

The candidate embeddings of all items are computed once after training and
saved in the model as variables, together with the Catalog's tables, so
serving is a table lookup, the query tower, one matmul, a mask and
tf.math.top_k: no custom ops, nothing outside the SavedModel. The same scores
back every serving output, so the rank TFMA measures is the rank TF Serving
would serve:

* top_k: the K best unseen items of each user;
* rank: how many unseen items score above a given (true) item;
* popular rank: the same under the most-popular ranking, the baseline the
  gate measures the model's lift over, computed in the same pass.

A user's train items, and the items of the history a request passes, are
masked out (the reference recall excludes them too). A user with neither a
vocabulary entry nor any history gets items by train popularity instead of
an error or the untrained out-of-vocabulary embedding.

Functions take `index`, a RetrievalIndex or the object tf.saved_model
restores from one (same variables, none of the Python methods), so the TFLite
exporter converts this very code. They use only ops TFLite has as builtins:
the seen items are gathered from CSR arrays with plain index arithmetic (no
RaggedTensor) and masked with scatter_nd (no tensor_scatter_nd_update).
"""
import numpy as np
import tensorflow as tf

from modules.two_tower.catalog import Catalog

# Score of a masked (already seen) item: finite, so outputs stay finite even
# for a user who has seen almost everything, and below any real score.
MASKED_SCORE = -1e9


class RetrievalIndex(tf.Module):
  """Candidate embeddings, item ids, popularity and the Catalog's user tables."""

  def __init__(self, candidate_embeddings: np.ndarray, item_ids: np.ndarray,
               catalog: Catalog):
    super().__init__(name="retrieval_index")

    def constant(value, dtype=None):
      return tf.Variable(value, trainable=False, dtype=dtype)

    self.candidates = constant(candidate_embeddings.astype(np.float32))
    self.item_ids = constant(item_ids.astype(object), tf.string)
    # Log train count, plus a tiny index term so ties keep vocabulary order.
    popularity = np.log(catalog.item_counts) - np.arange(catalog.num_items) * 1e-6
    self.popularity = constant(popularity.astype(np.float32))
    self.seen_row_splits = constant(catalog.seen_row_splits)
    self.seen_items = constant(catalog.seen_items)
    self.user_features = constant(catalog.user_features)
    self.user_history = constant(catalog.user_history)
    self.user_history_length = constant(catalog.user_history_length)


def num_known_users(index) -> tf.Tensor:
  """Catalog rows: every vocabulary user, then the out-of-vocabulary one."""
  return tf.shape(index.seen_row_splits, out_type=tf.int64)[0] - 2


def _mask(rows: tf.Tensor, items: tf.Tensor, shape: tf.Tensor) -> tf.Tensor:
  """[batch, num_items] float, 1 at each (row, item); repeats count once."""
  mask = tf.scatter_nd(tf.stack([rows, items], axis=1), tf.ones_like(items, tf.float32), shape)
  return tf.minimum(mask, 1.0)


def _history_entries(history: tf.Tensor, num_items: tf.Tensor):
  """(rows, items) of the entries of `history` ([batch, width] item
  indices) that are catalogue items, not padding or out-of-vocabulary."""
  width = tf.shape(history, out_type=tf.int64)[1]
  rows = tf.repeat(tf.range(tf.shape(history, out_type=tf.int64)[0]), width)
  items = tf.reshape(history, [-1])
  in_catalogue = (items >= 0) & (items < num_items)
  return tf.boolean_mask(rows, in_catalogue), tf.boolean_mask(items, in_catalogue)


def history_mask(history: tf.Tensor, num_items: tf.Tensor) -> tf.Tensor:
  """[batch, num_items] float, 1 where the row's history holds the item."""
  rows, items = _history_entries(history, num_items)
  return _mask(rows, items, tf.stack([tf.shape(history, out_type=tf.int64)[0], num_items]))


def seen_mask(index, user_index: tf.Tensor, history: tf.Tensor, num_items: tf.Tensor
              ) -> tf.Tensor:
  """[batch, num_items] float, 1 where the user has the item in train or in
  `history`."""
  starts = tf.gather(index.seen_row_splits, user_index)
  lengths = tf.gather(index.seen_row_splits, user_index + 1) - starts
  rows = tf.repeat(tf.range(tf.shape(user_index, out_type=tf.int64)[0]), lengths)
  within_row = tf.range(tf.reduce_sum(lengths)) - tf.gather(
      tf.cumsum(lengths, exclusive=True), rows)
  seen = tf.gather(index.seen_items, tf.gather(starts, rows) + within_row)
  history_rows, history_items = _history_entries(history, num_items)
  return _mask(tf.concat([rows, history_rows], axis=0), tf.concat([seen, history_items], axis=0),
               tf.stack([tf.shape(user_index, out_type=tf.int64)[0], num_items]))


def masked_scores(index, user_index: tf.Tensor, history: tf.Tensor, queries: tf.Tensor
                  ) -> tf.Tensor:
  """[batch, num_items] scores of `queries`; seen items masked; a user with
  no vocabulary entry and no history scored by popularity."""
  user_index = tf.reshape(user_index, [-1])
  personal = tf.matmul(queries, index.candidates, transpose_b=True)
  personalised = (user_index < num_known_users(index)) | tf.reduce_any(history >= 0, axis=1)
  scores = tf.where(personalised[:, tf.newaxis], personal,
                    tf.broadcast_to(index.popularity[tf.newaxis, :], tf.shape(personal)))
  mask = seen_mask(index, user_index, history, tf.shape(personal, out_type=tf.int64)[1])
  return tf.where(mask > 0, tf.constant(MASKED_SCORE), scores)


def popularity_scores(index, scores: tf.Tensor) -> tf.Tensor:
  """The most-popular ranking under the same mask as `scores`."""
  popular = tf.broadcast_to(index.popularity[tf.newaxis, :], tf.shape(scores))
  return tf.where(scores > MASKED_SCORE, popular, tf.constant(MASKED_SCORE))


def rank(scores: tf.Tensor, item_index: tf.Tensor) -> tf.Tensor:
  """0-based rank of each true item among the user's unseen items, float32.

  An item the user already has, or one outside the vocabulary, cannot be
  recommended: its rank is the catalogue size, a certain miss.
  """
  item_index = tf.reshape(item_index, [-1])
  num_items = tf.shape(scores, out_type=tf.int64)[1]
  in_vocab = item_index < num_items
  true_scores = tf.gather(scores, tf.minimum(item_index, num_items - 1), batch_dims=1)
  above = tf.reduce_sum(tf.cast(scores > true_scores[:, tf.newaxis], tf.int64), axis=1)
  recommendable = in_vocab & (true_scores > MASKED_SCORE)
  return tf.cast(tf.where(recommendable, above, num_items), tf.float32)


def top_k(index, scores: tf.Tensor, k: int):
  """(item ids [batch, k] strings, scores [batch, k]) of the best items."""
  top = tf.math.top_k(scores, k=k)
  return tf.gather(index.item_ids, top.indices), top.values
