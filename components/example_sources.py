"""Where a family's examples come from: one source object per ExampleGen kind.

A source knows the three things about its kind of input that would otherwise
be dispatched on a string in three places:

- `component(data_dir, span_request)`: the ExampleGen that reads its `train`
  and `eval` (contract.SPLITS) and carves a `validation` split out of train
  (components/carved_splits). The eval split is fixed by the data, so every
  run and every reference figure uses the same eval examples; where the data
  comes in spans (components/spans.py), it reads the window of spans the
  request asks for and takes eval from the newest alone;
- `check(data_dir, span_request)`: a check of the files in a second, before
  any component runs, that names the file (and span) at fault (ExampleGen
  fails late and obscurely on a missing split or an empty or non-GZIP file);
- `records(data_dir, split)`: the serialized tf.Examples of a split (train,
  validation or eval) exactly as that ExampleGen emits them (for the
  reference statistics and tests).

Importing this module imports neither TFX nor TensorFlow: the runners check
their input with it while arguments are still being parsed.
"""
import abc
import glob
import gzip
import os
import zlib
from typing import Dict, Iterator, List, Optional, Sequence

from components import spans
from components.input_errors import InputDataError
from modules.common.contract import (EVAL_SPLIT, SPLITS, TRAIN_SPLIT, VALIDATION_SPLIT,
                                     is_validation_record)
from modules.two_tower import movielens

__all__ = ["InputDataError", "ExampleSource", "TFRECORD", "MOVIELENS"]


class ExampleSource(abc.ABC):
  """One kind of input data and the ExampleGen that reads it."""
  kind: str

  @abc.abstractmethod
  def component(self, data_dir: str, span_request: Optional[spans.SpanRequest] = None):
    """The ExampleGen component reading `data_dir` (a local path or a URI),
    or the window of its spans that `span_request` asks for."""

  def check(self, data_dir: str, span_request: Optional[spans.SpanRequest] = None
            ) -> List[str]:
    """Raises InputDataError naming the file (or span) at fault; returns the
    files the run would read."""
    window = spans.resolve(data_dir, span_request)
    if window is None:
      return self.check_dataset(data_dir, eval_needed=True)
    return [path for span in window.spans
            for path in self.check_dataset(window.directory(span),
                                           eval_needed=span == window.newest)]

  @abc.abstractmethod
  def check_dataset(self, data_dir: str, eval_needed: bool) -> List[str]:
    """`check` of one dataset or span (an older span of a window is only
    trained on: it needs no eval data)."""

  @abc.abstractmethod
  def records(self, data_dir: str, split: str) -> Iterator[bytes]:
    """Serialized tf.Examples of `split`, as the component would emit them."""

  def records_by_split(self, data_dir: str, splits: Sequence[str]) -> Dict[str, List[bytes]]:
    """`records` of each of `splits`, for a source that can read them in one pass."""
    return {split: list(self.records(data_dir, split)) for split in splits}


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


class TFRecordSource(ExampleSource):
  """GZIP TFRecords of tf.Example under `<data_dir>/train/` and `<data_dir>/eval/`."""
  kind = "tfrecord"

  def component(self, data_dir: str, span_request: Optional[spans.SpanRequest] = None):
    # pylint: disable=import-outside-toplevel
    from components.tfrecord_example_gen.component import TFRecordExampleGen
    return TFRecordExampleGen(input_base=data_dir, span_request=span_request)

  def check_dataset(self, data_dir: str, eval_needed: bool) -> List[str]:
    files = []
    for split in (SPLITS if eval_needed else (TRAIN_SPLIT,)):
      split_files = sorted(glob.glob(os.path.join(data_dir, split, "*")))
      if not split_files:
        raise InputDataError(
            f"{os.path.join(data_dir, split)}: no input files for split '{split}'")
      for path in split_files:
        _check_gzip_tfrecord(path)
      files.extend(split_files)
    return files

  def records(self, data_dir: str, split: str) -> Iterator[bytes]:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    folder = EVAL_SPLIT if split == EVAL_SPLIT else TRAIN_SPLIT
    files = sorted(glob.glob(os.path.join(data_dir, folder, "*")))
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
      record = record.numpy()
      if split == EVAL_SPLIT or is_validation_record(record) == (split == VALIDATION_SPLIT):
        yield record


class MovieLensSource(ExampleSource):
  """A MovieLens-100k-format directory (u.data + u.item), split per user by time."""
  kind = "movielens"
  files = (movielens.RATINGS_FILE, movielens.ITEMS_FILE)

  def component(self, data_dir: str, span_request: Optional[spans.SpanRequest] = None):
    # pylint: disable=import-outside-toplevel
    from components.movielens_example_gen.component import MovieLensExampleGen
    return MovieLensExampleGen(input_base=data_dir, span_request=span_request)

  def check_dataset(self, data_dir: str, eval_needed: bool) -> List[str]:
    """Both files exist and are not empty (rows are checked as they are
    read); an older span of a window needs only its interactions (u.data):
    the catalogue and the users are the newest span's."""
    found = []
    for name in (self.files if eval_needed else (movielens.RATINGS_FILE,)):
      path = os.path.join(data_dir, name)
      if not os.path.isfile(path):
        raise InputDataError(
            f"{path}: missing (a MovieLens directory needs {', '.join(self.files)})")
      if os.path.getsize(path) == 0:
        raise InputDataError(f"{path}: empty file")
      found.append(path)
    return found

  def records(self, data_dir: str, split: str) -> Iterator[bytes]:
    # pylint: disable=import-outside-toplevel
    from components.movielens_example_gen import executor
    for name, record in executor.serialized_by_split(data_dir):
      if name == split:
        yield record

  def records_by_split(self, data_dir: str, splits: Sequence[str]) -> Dict[str, List[bytes]]:
    """One pass: every split's examples come from one build of all timelines."""
    # pylint: disable=import-outside-toplevel
    from components.movielens_example_gen import executor
    by_split = {split: [] for split in splits}
    for split, record in executor.serialized_by_split(data_dir):
      if split in by_split:
        by_split[split].append(record)
    return by_split


TFRECORD = TFRecordSource()
MOVIELENS = MovieLensSource()
