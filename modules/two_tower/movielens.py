"""Reader and time split for interaction logs in the MovieLens-100k format.

The two-tower family's data source: MovieLensExampleGen
(components/movielens_example_gen) turns what it reads into tf.Examples, and
the data scripts (data/interactions) write and score files in the same
format. The shipped data is a generated log (data/interactions/synthetic);
the real MovieLens-100k has the same files:

* ``u.data``: tab-separated ``user_id, item_id, rating, timestamp`` rows.
* ``u.item``: ``|``-separated ``item_id|title|release date|video release
  date|IMDb URL|`` followed by 19 genre flags (0/1) in the order of ``GENRES``.
  The real file is latin-1 encoded (accented titles), not UTF-8.
* ``u.user`` (optional): ``|``-separated ``user_id|age|gender|occupation|zip
  code``. Without it every user gets UNKNOWN_USER's features.

The reader is plain Python so that it has no dependency beyond the standard
library and can run anywhere the pipeline does. Malformed rows raise
``MovieLensFormatError`` naming the file and the 1-based line, because a bad row
otherwise surfaces much later as a confusing schema or lookup failure.
"""
from __future__ import annotations

import collections
import os
from typing import Iterable, Iterator, Mapping, NamedTuple, Optional, Sequence

from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT

# Genre flag order of MovieLens-100k's u.item (and of its u.genre file).
GENRES = (
  "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
  "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",
  "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
RATINGS_FILE = "u.data"
ITEMS_FILE = "u.item"
USERS_FILE = "u.user"
# Each example carries the items its user interacted with before it (train
# interactions only, most recent first), at most this many: the user tower's
# history input.
HISTORY_LENGTH = 50
# u.item carries accented titles in latin-1; u.data is ASCII, and reading it as
# latin-1 too means stray bytes reach the integer check and get a line number
# instead of failing as an undecodable file.
ENCODING = "latin-1"

_ITEM_FIELDS = 5 + len(GENRES)
_RATING_FIELDS = ("user_id", "item_id", "rating", "timestamp")
_USER_FIELDS = ("user_id", "age", "gender", "occupation", "zip_code")


class MovieLensFormatError(ValueError):
  """A row of a MovieLens file is malformed; the message starts with path:line."""

  def __init__(self, path: str, line_number: int, reason: str):
    super().__init__(f"{path}:{line_number}: {reason}")
    self.path = path
    self.line_number = line_number
    self.reason = reason


class Item(NamedTuple):
  """One row of u.item; ``genres`` lists the names whose flag is 1."""

  item_id: int
  title: str
  release_date: str
  genres: tuple[str, ...]


class User(NamedTuple):
  """One row of u.user."""

  user_id: int
  age: int
  gender: str
  occupation: str
  zip_code: str


# What a user missing from u.user (or every user, without the file) gets.
UNKNOWN_USER = User(0, 0, "unknown", "unknown", "unknown")


class Interaction(NamedTuple):
  """One row of u.data joined with its item's genre names (a tuple), title
  and release year (0 when u.item gives no release date)."""

  user_id: int
  item_id: int
  rating: int
  timestamp: int
  genres: tuple[str, ...]
  title: str = ""
  release_year: int = 0
  # The span the row arrived in (components/spans.py); 0 in data without spans.
  span: int = 0


class TimelineRow(NamedTuple):
  """An interaction as a split example: which split, and what came before.

  ``history`` holds the item ids of the user's earlier train and validation
  interactions, most recent first, at most HISTORY_LENGTH of them;
  ``history_length`` counts all of them (uncapped). An eval row's history is
  the whole timeline before the eval cut, never another eval row: the model
  predicts each held-out item from what it could know at serving time.
  """

  split: str
  interaction: Interaction
  history: tuple[int, ...]
  history_length: int


def _lines(path: str) -> Iterator[tuple[int, str]]:
  """Yields (1-based line number, line without newline), skipping empty lines."""
  with open(path, encoding=ENCODING) as handle:
    for line_number, line in enumerate(handle, start=1):
      line = line.rstrip("\r\n")
      if line:
        yield line_number, line


def _fields(path: str, line_number: int, line: str, separator: str, expected: int
            ) -> list[str]:
  """The line's fields, refused unless there are exactly ``expected``."""
  fields = line.split(separator)
  if len(fields) != expected:
    separated = "tab-separated" if separator == "\t" else f"{separator!r}-separated"
    raise MovieLensFormatError(
      path, line_number, f"expected {expected} {separated} fields, got {len(fields)}")
  return fields


def _parse_int(path: str, line_number: int, name: str, text: str) -> int:
  # isdigit alone would accept e.g. '²' and int() alone would accept ' 7' or
  # '1_0'; the files only ever hold plain ASCII digits.
  if not (text.isascii() and text.isdigit()):
    raise MovieLensFormatError(
      path, line_number, f"{name} is not a non-negative integer: {text!r}")
  return int(text)


# The parse_* functions check one non-empty line (no newline) of a file; the
# read_* functions apply them to a whole file in order and add the checks
# that span lines (duplicate ids). MovieLensExampleGen parses lines in
# parallel with the same functions.

def parse_item(path: str, line_number: int, line: str) -> Item:
  """One u.item row."""
  fields = _fields(path, line_number, line, "|", _ITEM_FIELDS)
  item_id = _parse_int(path, line_number, "item_id", fields[0])
  flags = fields[5:]
  if any(flag not in ("0", "1") for flag in flags):
    raise MovieLensFormatError(
      path, line_number, f"genre flags must be 0 or 1, got {flags}")
  genres = tuple(name for name, flag in zip(GENRES, flags) if flag == "1")
  return Item(item_id, fields[1], fields[2], genres)


def parse_user(path: str, line_number: int, line: str) -> User:
  """One u.user row; empty text fields become "unknown"."""
  fields = _fields(path, line_number, line, "|", len(_USER_FIELDS))
  user_id = _parse_int(path, line_number, "user_id", fields[0])
  age = _parse_int(path, line_number, "age", fields[1])
  gender, occupation, zip_code = (field.strip() or "unknown" for field in fields[2:])
  return User(user_id, age, gender, occupation, zip_code)


def parse_rating(path: str, line_number: int, line: str, items: Mapping[int, Item]
                 ) -> tuple[int, int, int, int]:
  """One u.data row as (user_id, item_id, rating, timestamp), rejecting item
  ids that ``items`` does not know."""
  fields = _fields(path, line_number, line, "\t", len(_RATING_FIELDS))
  user_id, item_id, rating, timestamp = (
    _parse_int(path, line_number, name, text)
    for name, text in zip(_RATING_FIELDS, fields))
  if item_id not in items:
    raise MovieLensFormatError(
      path, line_number, f"item_id {item_id} is not in {ITEMS_FILE}")
  if not 1 <= rating <= 5:
    raise MovieLensFormatError(
      path, line_number, f"rating must be 1-5, got {rating}")
  return user_id, item_id, rating, timestamp


def interaction(user_id: int, item: Item, rating: int, timestamp: int,
                span: int = 0) -> Interaction:
  """A u.data row (of `span`) joined with its u.item row."""
  return Interaction(user_id, item.item_id, rating, timestamp, item.genres, item.title,
                     release_year(item), span)


def _by_unique_id(path: str, lines: Iterable[tuple[int, str]], parse, id_field: str) -> dict:
  """Rows parsed from (line number, line) pairs, keyed by their `id_field`;
  a repeated id names the line that repeats it."""
  rows = {}
  for line_number, line in lines:
    row = parse(path, line_number, line)
    row_id = getattr(row, id_field)
    if row_id in rows:
      raise MovieLensFormatError(path, line_number, f"duplicate {id_field} {row_id}")
    rows[row_id] = row
  return rows


def items_from_lines(path: str, lines: Iterable[tuple[int, str]]) -> dict[int, Item]:
  """u.item's (line number, line) pairs as a dict keyed by item id."""
  return _by_unique_id(path, lines, parse_item, "item_id")


def users_from_lines(path: str, lines: Iterable[tuple[int, str]]) -> dict[int, User]:
  """u.user's (line number, line) pairs as a dict keyed by user id."""
  return _by_unique_id(path, lines, parse_user, "user_id")


def interactions_from_lines(path: str, lines: Iterable[tuple[int, str]],
                            items: Mapping[int, Item]) -> Iterator[Interaction]:
  """u.data's (line number, line) pairs joined with ``items``, one at a time."""
  for line_number, line in lines:
    user_id, item_id, rating, timestamp = parse_rating(path, line_number, line, items)
    yield interaction(user_id, items[item_id], rating, timestamp)


def read_items(path: str) -> dict[int, Item]:
  """Reads a u.item file into a dict keyed by item id."""
  return items_from_lines(path, _lines(path))


def release_year(item: Item) -> int:
  """The year of u.item's release date (``01-Jan-1995``), 0 when missing."""
  year = item.release_date[-4:]
  return int(year) if year.isascii() and year.isdigit() else 0


def read_users(path: str) -> dict[int, User]:
  """Reads a u.user file into a dict keyed by user id."""
  return users_from_lines(path, _lines(path))


def load_users(data_dir: str) -> dict[int, User]:
  """``data_dir``/u.user, or no users when the log comes without one."""
  path = os.path.join(data_dir, USERS_FILE)
  return read_users(path) if os.path.exists(path) else {}


def read_interactions(path: str, items: Mapping[int, Item]) -> list[Interaction]:
  """Reads a u.data file, rejecting item ids that ``items`` does not know."""
  return list(interactions_from_lines(path, _lines(path), items))


def load_movielens(data_dir: str) -> tuple[list[Interaction], dict[int, Item]]:
  """Reads ``data_dir``/u.item and ``data_dir``/u.data."""
  items = read_items(os.path.join(data_dir, ITEMS_FILE))
  return read_interactions(os.path.join(data_dir, RATINGS_FILE), items), items


def time_split(
  interactions: Sequence[Interaction],
  eval_per_user: int = 2,
  min_interactions: int = 3,
  eval_span: Optional[int] = None,
) -> tuple[list[Interaction], list[Interaction]]:
  """Splits into (train, eval) by holding out each user's latest interactions.

  A per-user time split mirrors serving (predict what a user does next from
  their past) and keeps every eval user known to the model. Per user, the last
  ``eval_per_user`` interactions in (timestamp, item_id) order go to eval;
  the item id breaks the same-second ties that real MovieLens logs contain so
  the split does not depend on row order. Users with fewer than
  ``min_interactions`` rows stay entirely in train, and every other user
  keeps at least one train row. With ``eval_span`` (a window of spans), only
  rows of that span are held out: a user's latest rows that arrived in it, so
  users not active in the newest span have no eval rows and nothing older is
  ever eval. Both outputs keep the input row order.
  """
  _check_split_rule(eval_per_user, min_interactions)
  rows_by_user: dict[int, list[int]] = collections.defaultdict(list)
  for index, row in enumerate(interactions):
    rows_by_user[row.user_id].append(index)
  eval_rows: set[int] = set()
  for rows in rows_by_user.values():
    rows.sort(key=lambda i: (interactions[i].timestamp, interactions[i].item_id))
    held = _held_out([interactions[i] for i in rows], eval_per_user, min_interactions,
                     eval_span)
    eval_rows.update(rows[len(rows) - held:])
  train = [row for i, row in enumerate(interactions) if i not in eval_rows]
  evaluation = [row for i, row in enumerate(interactions) if i in eval_rows]
  return train, evaluation



def _check_split_rule(eval_per_user: int, min_interactions: int) -> None:
  if eval_per_user < 1:
    raise ValueError(f"eval_per_user must be >= 1, got {eval_per_user}")
  if min_interactions < 2:
    raise ValueError(f"min_interactions must be >= 2, got {min_interactions}")


def _held_out(ordered: Sequence[Interaction], eval_per_user: int, min_interactions: int,
              eval_span: Optional[int] = None) -> int:
  """How many of a user's latest rows (`ordered` in time) time_split holds
  out: with `eval_span`, no more than the trailing rows of that span."""
  if len(ordered) < min_interactions:
    return 0
  held = min(eval_per_user, len(ordered) - 1)
  if eval_span is None:
    return held
  return next((count for count, row in enumerate(reversed(ordered[-held:]))
               if row.span != eval_span), held)


def user_timeline(
  rows: Sequence[Interaction],
  eval_per_user: int = 2,
  min_interactions: int = 3,
  history_length: int = HISTORY_LENGTH,
  eval_span: Optional[int] = None,
) -> list[TimelineRow]:
  """One user's rows as split examples with their history, in time order.

  The eval rows are time_split's (the same rule, applied to this user
  alone), so the eval rows of all users' timelines are exactly time_split's;
  the same rule applied again to the rows before them carves the validation
  rows out of train: the Trainer chooses on those, never on eval (with
  `eval_span`, eval rows come from that span alone, validation rows from any
  span of the window). A row's
  history is the user's earlier non-eval rows, so an eval row is predicted
  from everything before the eval cut and nothing after it. Taking one user
  at a time is what lets a Beam pipeline group by user and scale.
  """
  _check_split_rule(eval_per_user, min_interactions)
  ordered = sorted(rows, key=lambda row: (row.timestamp, row.item_id))
  num_known = len(ordered) - _held_out(ordered, eval_per_user, min_interactions, eval_span)
  num_train = num_known - _held_out(ordered[:num_known], eval_per_user, min_interactions)
  recent_first = [row.item_id for row in reversed(ordered[:num_known])]
  timeline = []
  for position, row in enumerate(ordered):
    earlier = min(position, num_known)
    split = (TRAIN_SPLIT if position < num_train else
             VALIDATION_SPLIT if position < num_known else EVAL_SPLIT)
    start = num_known - earlier
    history = tuple(recent_first[start:start + history_length])
    timeline.append(TimelineRow(split, row, history, earlier))
  return timeline


def timelines(interactions: Sequence[Interaction], **split_rule) -> Iterator[TimelineRow]:
  """user_timeline over every user of the log (users in first-seen order)."""
  rows_by_user: dict[int, list[Interaction]] = collections.defaultdict(list)
  for row in interactions:
    rows_by_user[row.user_id].append(row)
  for rows in rows_by_user.values():
    yield from user_timeline(rows, **split_rule)
