"""The MovieLens ExampleGen's tf.Examples, written directly as protobuf wire bytes.

Why not `tf.train.Example(...).SerializeToString()` (executor.to_example):
building and serializing the message costs 93 CPU microseconds per example
(13 features, a history of up to 50 items) on the 2-core development machine,
more than the rest of the ExampleGen's own work together, and 1M
interactions make 1M examples. Most of an example repeats: an item's
features are the same in every interaction with it, a user's in each of
their rows, and a history holds the same few item ids again and again. So
each of those is encoded once and an example is a join of ready-made parts:
12 microseconds (BENCHMARKS.md, scale section).

The layout (tensorflow/core/example/{example,feature}.proto), every field
length-delimited:
  Example   { Features features = 1; }
  Features  { map<string, Feature> feature = 1; }   (entry: key = 1, value = 2)
  Feature   { BytesList bytes_list = 1; Int64List int64_list = 3; }
  BytesList { repeated bytes value = 1; }
  Int64List { repeated int64 value = 1 [packed]; }
The bytes parse to the same tf.Example as executor.to_example's
(tests/test_movielens_beam.py compares every example of a run); only the order
of the map entries may differ, which protobuf leaves unspecified anyway.
"""
from typing import Dict, Iterable

from modules.two_tower import features, movielens

_LENGTH_DELIMITED_1 = b"\x0a"  # field 1, wire type 2
_LENGTH_DELIMITED_2 = b"\x12"  # field 2, wire type 2
_LENGTH_DELIMITED_3 = b"\x1a"  # field 3, wire type 2
_INT64_MASK = (1 << 64) - 1  # int64 varints carry negatives as two's complement


def _varint(value: int) -> bytes:
  value &= _INT64_MASK
  if value < 0x80:
    return bytes((value,))
  out = bytearray()
  while value > 0x7F:
    out.append((value & 0x7F) | 0x80)
    value >>= 7
  out.append(value)
  return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
  return tag + _varint(len(payload)) + payload


def bytes_value(value: bytes) -> bytes:
  """One value of a BytesList, ready to join with others."""
  return _delimited(_LENGTH_DELIMITED_1, value)


def strings_feature(values: Iterable[str]) -> bytes:
  """A Feature holding a BytesList of the UTF-8 encoded `values`."""
  return _joined_bytes_feature(b"".join(bytes_value(v.encode("utf-8")) for v in values))


def _joined_bytes_feature(joined_values: bytes) -> bytes:
  return _delimited(_LENGTH_DELIMITED_1, joined_values)


def int_feature(value: int) -> bytes:
  """A Feature holding an Int64List of one value."""
  return _delimited(_LENGTH_DELIMITED_3, _delimited(_LENGTH_DELIMITED_1, _varint(value)))


def entry(key: str, feature: bytes) -> bytes:
  """One `Features.feature` map entry, ready to join with others."""
  encoded_key = _encoded_keys.get(key)
  if encoded_key is None:
    encoded_key = _encoded_keys[key] = _delimited(_LENGTH_DELIMITED_1, key.encode("utf-8"))
  return _delimited(_LENGTH_DELIMITED_1, encoded_key + _delimited(_LENGTH_DELIMITED_2, feature))


_encoded_keys: Dict[str, bytes] = {}


def example(entries: bytes) -> bytes:
  """A serialized tf.Example whose Features are the joined `entries` (the
  Example's only field is its Features)."""
  return _delimited(_LENGTH_DELIMITED_1, entries)


def user_entries(user_id: int, user: movielens.User) -> bytes:
  """The features every example of one user shares."""
  return b"".join((
      entry(features.USER_ID, strings_feature([str(user_id)])),
      entry(features.USER_AGE, int_feature(user.age)),
      entry(features.USER_GENDER, strings_feature([user.gender])),
      entry(features.USER_OCCUPATION, strings_feature([user.occupation])),
      entry(features.USER_ZIP, strings_feature([user.zip_code])),
  ))


def item_entries(row: movielens.Interaction) -> bytes:
  """The features every interaction with one item shares."""
  return b"".join((
      entry(features.ITEM_ID, strings_feature([str(row.item_id)])),
      entry(features.GENRES_KEY, strings_feature(row.genres)),
      entry(features.TITLE, strings_feature([row.title])),
      entry(features.RELEASE_YEAR, int_feature(row.release_year)),
  ))


class _EncodedItemIds(dict):
  """Item id -> its encoded BytesList value, made on first use (a history
  repeats the same few ids; the lookup is the cost of a history)."""

  def __missing__(self, item_id: int) -> bytes:
    value = self[item_id] = bytes_value(str(item_id).encode("utf-8"))
    return value


class ExampleEncoder:
  """Serialized tf.Examples of TimelineRows, reusing each item's encoded parts.

  Holds one entry per item seen (the catalogue is small: thousands of items
  against millions of interactions), never per interaction.
  """

  def __init__(self):
    self._item_entries: Dict[int, bytes] = {}
    self._history_values = _EncodedItemIds()

  def encode(self, timeline_row: movielens.TimelineRow, user_part: bytes) -> bytes:
    """The example of `timeline_row`; `user_part` is user_entries of its user."""
    row = timeline_row.interaction
    item_part = self._item_entries.get(row.item_id)
    if item_part is None:
      item_part = self._item_entries[row.item_id] = item_entries(row)
    history = b"".join(map(self._history_values.__getitem__, timeline_row.history))
    return example(b"".join((
        user_part, item_part,
        entry(features.RATING, int_feature(row.rating)),
        entry(features.TIMESTAMP, int_feature(row.timestamp)),
        entry(features.HISTORY, _joined_bytes_feature(history)),
        entry(features.HISTORY_LENGTH, int_feature(timeline_row.history_length)),
    )))
