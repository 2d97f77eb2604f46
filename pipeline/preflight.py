"""Checks on the input data made before any component runs.

TFX's ExampleGen fails late and obscurely on a missing split, an empty or a
non-GZIP file; these checks fail in a second, naming the file at fault, and
leave nothing written.
"""
import glob
import gzip
import os
import zlib
from typing import List

from pipeline.pipeline import EVAL_SPLIT, TRAIN_SPLIT

MOVIELENS_FILES = ("u.data", "u.item")


class InputDataError(ValueError):
  """The input data cannot be read as the family's ExampleGen expects."""


def _check_gzip_tfrecord(path: str) -> None:
  """A non-empty GZIP file whose first record header is intact."""
  if os.path.getsize(path) == 0:
    raise InputDataError(f"{path}: empty file")
  try:
    with gzip.open(path, "rb") as stream:
      header = stream.read(12)
  except (OSError, EOFError, zlib.error) as error:
    raise InputDataError(f"{path}: not a GZIP TFRecord file ({error})") from None
  if len(header) < 12:
    raise InputDataError(f"{path}: holds no complete TFRecord")


def check_tfrecord_splits(data_dir: str) -> List[str]:
  """`<data_dir>/train/*` and `<data_dir>/eval/*` exist and are readable."""
  files = []
  for split in (TRAIN_SPLIT, EVAL_SPLIT):
    split_files = sorted(glob.glob(os.path.join(data_dir, split, "*")))
    if not split_files:
      raise InputDataError(f"{os.path.join(data_dir, split)}: no input files for split '{split}'")
    for path in split_files:
      _check_gzip_tfrecord(path)
    files.extend(split_files)
  return files


def check_movielens_dir(data_dir: str) -> List[str]:
  """`u.data` and `u.item` exist and are not empty (rows are checked on read)."""
  files = []
  for name in MOVIELENS_FILES:
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
      raise InputDataError(f"{path}: missing (a MovieLens directory needs {', '.join(MOVIELENS_FILES)})")
    if os.path.getsize(path) == 0:
      raise InputDataError(f"{path}: empty file")
    files.append(path)
  return files


CHECKS = {"tfrecord": check_tfrecord_splits, "movielens": check_movielens_dir}


def check_input(example_gen_kind: str, data_dir: str) -> List[str]:
  """Runs the check of an ExampleGen kind; returns the files it found."""
  return CHECKS[example_gen_kind](data_dir)
