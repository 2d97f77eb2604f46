"""MovieLensExampleGen as a Beam pipeline: the executor's splits hold exactly
the examples of the sequential reference (executor.examples_by_split, built
from modules/two_tower/movielens and tf.train.Example), and a bad row fails
the run naming the file and the line, as the sequential reader names it."""
import collections
import glob
import os
import re
import shutil

import pytest
import tensorflow as tf

from components.carved_splits import OUTPUT_SPLITS
from components.movielens_example_gen import executor, wire_format
from modules.two_tower import movielens
from pipeline import configs
from tests import e2e_helpers

SYNTHETIC = os.path.join(configs.DEFAULT_DATA_ROOT, "interactions", "synthetic")
ML_100K = os.path.join(configs.DEFAULT_DATA_ROOT, configs.TWO_TOWER.data_subdir)
# 14k and 11k rows: users of every activity level (a sixth of the synthetic
# ones and a third of the real ones with 100 rows or more), ~15 s each.
SYNTHETIC_SLICE_USERS = 200
REAL_SLICE_USERS = 100


def _canonical(serialized: bytes) -> bytes:
  """The example serialized deterministically (map entries sorted by key):
  equal for equal examples whatever order their entries were written in."""
  return tf.train.Example.FromString(serialized).SerializeToString(deterministic=True)


def _written(output_dir: str, split: str) -> collections.Counter:
  files = glob.glob(os.path.join(output_dir, f"Split-{split}", "*.gz"))
  assert files, f"no files in Split-{split}"
  return collections.Counter(
      _canonical(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))


def _reference(data_dir: str) -> dict:
  by_split = {split: collections.Counter() for split in OUTPUT_SPLITS}
  for split, example in executor.examples_by_split(data_dir):
    by_split[split][example.SerializeToString(deterministic=True)] += 1
  return by_split


def _assert_same_examples(data_dir: str, output_dir: str) -> None:
  reference = _reference(data_dir)
  e2e_helpers.run_movielens_example_gen(data_dir, output_dir)
  for split in OUTPUT_SPLITS:
    written = _written(output_dir, split)
    assert sum(reference[split].values()) > 0, split
    assert written == reference[split], (
        f"{split}: {sum((written - reference[split]).values())} examples only in the Beam "
        f"output, {sum((reference[split] - written).values())} only in the reference")


def _user_slice(source_dir: str, data_dir, num_users: int) -> str:
  """The rows of users 1..num_users of `source_dir`, with its u.item and u.user
  (whole users: the split of a user depends on all of their rows)."""
  data_dir.mkdir()
  with open(os.path.join(source_dir, movielens.RATINGS_FILE), "rb") as source:
    rows = [line for line in source if int(line.split(b"\t")[0]) <= num_users]
  (data_dir / movielens.RATINGS_FILE).write_bytes(b"".join(rows))
  for name in (movielens.ITEMS_FILE, movielens.USERS_FILE):
    shutil.copyfile(os.path.join(source_dir, name), data_dir / name)
  return str(data_dir)


@pytest.mark.integration
def test_synthetic_log_gives_the_reference_examples(tmp_path):
  data_dir = _user_slice(SYNTHETIC, tmp_path / "synthetic-slice", SYNTHETIC_SLICE_USERS)
  _assert_same_examples(data_dir, str(tmp_path / "out"))


@pytest.mark.integration
def test_real_movielens_slice_gives_the_reference_examples(tmp_path):
  """Real rows: latin-1 titles, same-second ties, items without a date."""
  if not os.path.exists(os.path.join(ML_100K, movielens.RATINGS_FILE)):
    raise FileNotFoundError(f"{ML_100K}: missing; `make movielens` builds it")
  data_dir = _user_slice(ML_100K, tmp_path / "ml-100k-slice", REAL_SLICE_USERS)
  _assert_same_examples(data_dir, str(tmp_path / "out"))


def test_wire_format_parses_to_the_reference_example_for_odd_values():
  """Empty genres and history, a negative timestamp, a multi-byte title."""
  encoder = wire_format.ExampleEncoder()
  user = movielens.User(7, 0, "unknown", "unknown", "unknown")
  for item_id, genres, timestamp, history, title in (
      (12, (), -5, (), "Misérables, Les (1995)"),
      (300, ("Drama", "War"), 2**40, (3, 300, 70000), "")):
    row = movielens.TimelineRow(
        "train", movielens.Interaction(7, item_id, 3, timestamp, genres, title, 1995),
        history, len(history) + 4)
    encoded = encoder.encode(row, wire_format.user_entries(7, user))
    assert _canonical(encoded) == _canonical(executor.to_example(row, user).SerializeToString())


# --- bad input --------------------------------------------------------------

ITEMS = (b"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story"
         b"|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
         b"1123|Mis\xe9rables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Mis"
         b"|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0\n")
RATINGS = b"".join(b"%d\t%d\t3\t88125%04d\n" % (user, item, user * 10 + item % 7)
                   for user in range(1, 40) for item in (1, 1123))
USERS = b"".join(b"%d|30|F|writer|55105\n" % user for user in range(1, 40))


def _write(directory, ratings=RATINGS, items=ITEMS, users=USERS):
  directory.mkdir()
  for name, content in ((movielens.RATINGS_FILE, ratings), (movielens.ITEMS_FILE, items),
                        (movielens.USERS_FILE, users)):
    (directory / name).write_bytes(content)
  return directory


def _replace_line(content: bytes, line_number: int, line: bytes) -> bytes:
  lines = content.splitlines(keepends=True)
  lines[line_number - 1] = line + b"\n"
  return b"".join(lines)


@pytest.mark.parametrize("name, edits, line, reason", [
    (movielens.RATINGS_FILE, {50: b"17\t1\tfive\t881250949", 60: b"17\t1"}, 50,
     "rating is not a non-negative integer: 'five'"),
    (movielens.RATINGS_FILE, {71: b"20\t9999\t3\t881250949"}, 71, "item_id 9999 is not in u.item"),
    (movielens.ITEMS_FILE, {2: ITEMS.splitlines()[0]}, 2, "duplicate item_id 1"),
    (movielens.USERS_FILE, {30: b"30|thirty|F|writer|55105"}, 30,
     "age is not a non-negative integer: 'thirty'"),
    (movielens.USERS_FILE, {33: b"4|30|F|writer|55105"}, 33, "duplicate user_id 4"),
])
def test_bad_row_fails_naming_file_and_first_bad_line(tmp_path, name, edits, line, reason):
  files = {"ratings": RATINGS, "items": ITEMS, "users": USERS}
  key = {movielens.RATINGS_FILE: "ratings", movielens.ITEMS_FILE: "items",
         movielens.USERS_FILE: "users"}[name]
  for line_number, bad in edits.items():
    files[key] = _replace_line(files[key], line_number, bad)
  data_dir = _write(tmp_path / "data", **files)
  message = f"{data_dir / name}:{line}: {reason}"
  with pytest.raises(Exception, match=re.escape(message)):
    e2e_helpers.run_movielens_example_gen(str(data_dir), str(tmp_path / "out"))
  # The sequential reader names the same line.
  with pytest.raises(movielens.MovieLensFormatError, match=f"^{re.escape(message)}$"):
    list(executor.examples_by_split(str(data_dir)))
