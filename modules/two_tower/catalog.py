"""What the serving model must know about the train split, beyond the towers.

One pass over Transform's train and validation output (every interaction
before the eval cut) collects, per vocabulary index:

* each item's features (genres, release-year bucket, title words) and train
  count: the candidate tower's input for every servable item, not only those
  in a given batch, and the popularity ranking (unknown users, and the
  baseline the gate compares with);
* each user's features (age bucket, gender, occupation, zip region), latest
  history (their last HISTORY_LENGTH train items, most recent first) and
  train items: serving looks a known user's tower inputs up here, so a
  request needs only the user id, and never recommends an item the user
  already has (as the reference recall does).
"""
import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from modules.two_tower import features
from modules.two_tower.app_input import USER_XF
from modules.two_tower.preprocessing import PAD

xf = features.transformed_name
ITEM_XF = xf(features.ITEM_ID)
GENRES_XF = xf(features.GENRES_KEY)
YEAR_XF = xf(features.RELEASE_YEAR)
TITLE_XF = xf(features.TITLE)
HISTORY_XF = xf(features.HISTORY)
HISTORY_LENGTH_XF = xf(features.HISTORY_LENGTH)
# The user-tower inputs a known user's row of the Catalog holds, in this order.
USER_FEATURES_XF = tuple(xf(key) for key in (
    features.USER_AGE, features.USER_GENDER, features.USER_OCCUPATION, features.USER_ZIP))


@dataclasses.dataclass(frozen=True)
class Catalog:
  """Train-split facts indexed by vocabulary index (ids 0..size-1; user
  tables have one more row, the out-of-vocabulary user's)."""
  item_genres: np.ndarray       # float32 [num_items, num_genres]
  item_years: np.ndarray        # int64 [num_items]
  item_titles: np.ndarray       # int64 [num_items, title words], PAD after the last
  item_counts: np.ndarray       # int64 [num_items], every vocabulary item >= 1
  user_features: np.ndarray     # int64 [num_users + 1, len(USER_FEATURES_XF)]
  user_history: np.ndarray      # int64 [num_users + 1, HISTORY_LENGTH], PAD after the last
  user_history_length: np.ndarray  # int64 [num_users + 1]: train items in all
  seen_row_splits: np.ndarray   # int64 [num_users + 2]: CSR rows, last = OOV user (empty)
  seen_items: np.ndarray        # int64 [num_train_pairs]: item indices, user-major

  @property
  def num_items(self) -> int:
    return self.item_counts.shape[0]

  @property
  def num_users(self) -> int:
    return self.seen_row_splits.shape[0] - 2


def collect(batches: tf.data.Dataset, num_users: int, num_items: int,
            unknown_user_features: Sequence[int]) -> Catalog:
  """Builds the Catalog from one pass over batches of transformed examples:
  every interaction before the eval cut (train and validation).

  Vocabularies were analysed on train alone, so a validation row may hold an
  item outside them: it is left out (it cannot be recommended or masked).
  Raises if a vocabulary item never shows up (then it would be served with
  made-up features). `unknown_user_features` is the out-of-vocabulary user's
  row.
  """
  keys = (USER_XF, ITEM_XF, GENRES_XF, YEAR_XF, TITLE_XF, HISTORY_XF, HISTORY_LENGTH_XF,
          *USER_FEATURES_XF)
  columns = {key: [] for key in keys}
  for batch in batches:
    for key in keys:
      value = batch[key].numpy()
      columns[key].append(value.reshape([value.shape[0], -1]) if value.ndim > 1
                          else value.reshape([-1]))
  data = {key: np.concatenate(parts) for key, parts in columns.items()}
  known = (data[USER_XF].reshape([-1]) < num_users) & (data[ITEM_XF].reshape([-1]) < num_items)
  data = {key: value[known] for key, value in data.items()}
  users, items = data[USER_XF].reshape([-1]), data[ITEM_XF].reshape([-1])
  item_counts = np.bincount(items, minlength=num_items)
  if not item_counts.all():
    raise ValueError(f"{int((item_counts == 0).sum())} vocabulary items never occur "
                     "in the examples: the transform graph does not match them")

  def per_item(values: np.ndarray) -> np.ndarray:
    table = np.zeros((num_items,) + values.shape[1:], values.dtype)
    table[items] = values  # An item's features are the same on every row.
    return table

  lengths = data[HISTORY_LENGTH_XF].reshape([-1])
  # Each user's latest example: its item, then the history before it.
  order = np.lexsort((lengths, users))
  last = order[np.r_[users[order][1:] != users[order][:-1], True]]
  user_history = np.full([num_users + 1, data[HISTORY_XF].shape[1]], PAD, np.int64)
  user_history[users[last]] = np.concatenate(
      [items[last, np.newaxis], data[HISTORY_XF][last, :-1]], axis=1)
  user_history_length = np.zeros([num_users + 1], np.int64)
  user_history_length[users[last]] = lengths[last] + 1
  user_features = np.tile(np.asarray(unknown_user_features, np.int64), [num_users + 1, 1])
  user_features[users] = np.stack(
      [data[key].reshape([-1]) for key in USER_FEATURES_XF], axis=1)

  pairs = np.unique(np.stack([users, items], axis=1), axis=0)  # user-major, deduplicated
  row_lengths = np.bincount(pairs[:, 0], minlength=num_users + 1)
  return Catalog(
      item_genres=per_item(data[GENRES_XF].astype(np.float32)),
      item_years=per_item(data[YEAR_XF].reshape([-1]).astype(np.int64)),
      item_titles=per_item(data[TITLE_XF].astype(np.int64)),
      item_counts=item_counts.astype(np.int64),
      user_features=user_features, user_history=user_history,
      user_history_length=user_history_length,
      seen_row_splits=np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int64),
      seen_items=pairs[:, 1].astype(np.int64))
