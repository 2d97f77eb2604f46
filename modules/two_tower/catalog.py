"""What the serving model must know about the train split, beyond the towers.

One pass over Transform's train output collects, per vocabulary index:
each item's genres (the candidate tower's input for every servable item, not
only those in a given batch), each item's train count (the in-batch sampling
probability for the logQ correction, and the ranking for unknown users), and
each user's train items (excluded from their recommendations, as the
reference recall does).
"""
import dataclasses

import numpy as np
import tensorflow as tf

from modules.two_tower import features

USER_XF = features.transformed_name(features.USER_ID)
ITEM_XF = features.transformed_name(features.ITEM_ID)
GENRES_XF = features.transformed_name(features.GENRES_KEY)


@dataclasses.dataclass(frozen=True)
class Catalog:
  """Train-split facts indexed by vocabulary index (ids 0..size-1)."""
  item_genres: np.ndarray      # float32 [num_items, num_genres]
  item_counts: np.ndarray      # int64 [num_items], every vocabulary item >= 1
  seen_row_splits: np.ndarray  # int64 [num_users + 2]: CSR rows, last = OOV user (empty)
  seen_items: np.ndarray       # int64 [num_train_pairs]: item indices, user-major

  @property
  def num_items(self) -> int:
    return self.item_counts.shape[0]

  @property
  def num_users(self) -> int:
    return self.seen_row_splits.shape[0] - 2

  def log_sampling_probability(self) -> np.ndarray:
    """log P(item is a batch's positive), [num_items + 1]; the OOV slot gets
    the probability of a single occurrence (it never occurs in training)."""
    counts = np.append(self.item_counts, 1).astype(np.float64)
    return np.log(counts / self.item_counts.sum()).astype(np.float32)


def collect(batches: tf.data.Dataset, num_users: int, num_items: int) -> Catalog:
  """Builds the Catalog from one pass over batches of transformed train examples.

  Raises if a vocabulary item never shows up (then it would be served with
  made-up genres) or an example carries an out-of-vocabulary index (the
  vocabulary was analysed on this very split, so that means a mismatch).
  """
  users, items, genres = [], [], []
  for batch in batches:
    users.append(np.reshape(batch[USER_XF].numpy(), [-1]))
    items.append(np.reshape(batch[ITEM_XF].numpy(), [-1]))
    genres.append(batch[GENRES_XF].numpy())
  users, items, genres = np.concatenate(users), np.concatenate(items), np.concatenate(genres)
  if users.max() >= num_users or items.max() >= num_items:
    raise ValueError("train examples hold out-of-vocabulary ids: the transform graph "
                     "does not match the train split it should have been analysed on")
  item_genres = np.zeros([num_items, genres.shape[1]], np.float32)
  item_genres[items] = genres  # An item's genres are the same on every row.
  item_counts = np.bincount(items, minlength=num_items)
  if not item_counts.all():
    raise ValueError(f"{int((item_counts == 0).sum())} vocabulary items never occur "
                     "in the train split")
  pairs = np.unique(np.stack([users, items], axis=1), axis=0)  # user-major, deduplicated
  row_lengths = np.bincount(pairs[:, 0], minlength=num_users + 1)
  return Catalog(item_genres=item_genres, item_counts=item_counts.astype(np.int64),
                 seen_row_splits=np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int64),
                 seen_items=pairs[:, 1].astype(np.int64))
