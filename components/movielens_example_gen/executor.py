"""Beam executor: MovieLens-format u.data + u.item (+ u.user) -> tf.Examples,
split by time.

The split is not a hash of each row: every user's latest interactions form the
eval split (modules/two_tower/movielens.time_split), the ones before those the
validation split (movielens.user_timeline); eval is the split the
reference recalls (data/interactions/reference_recall.py) are computed on, so
the model's recall and the references are comparable. Parsing and the split
rule are imported from that module, not re-implemented, and a malformed row
fails the run with MovieLensFormatError naming the file and line.

Two paths make the same examples:
- Executor, a Beam pipeline: lines are parsed in parallel, rows grouped by
  user, so no worker holds more than one user's timeline besides the small
  u.item and u.user; examples are encoded by wire_format (an eighth of the
  cost of building tf.train.Example messages). This is what runs.
- split_examples / examples_by_split, in one process with tf.train.Example
  (to_example): for the reference statistics and tests
  (components/example_sources.py), and the reference the executor's output
  is tested against (tests/test_movielens_beam.py).
"""
import os
import tempfile
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import apache_beam as beam
import tensorflow as tf
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from tfx.types import standard_component_specs

from components import spans
from components.carved_splits import OUTPUT_SPLITS, CarvedSplitsExecutor
from components.movielens_example_gen import wire_format
from modules.two_tower import features, movielens


def to_example(timeline_row: movielens.TimelineRow, user: movielens.User) -> tf.train.Example:
  """Ids as strings (they are categories, not quantities), genres as names;
  the user's demographics and earlier train items ride along."""
  def strings(*values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[v.encode("utf-8") for v in values]))

  def ints(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

  row = timeline_row.interaction
  return tf.train.Example(features=tf.train.Features(feature={
      features.USER_ID: strings(str(row.user_id)),
      features.ITEM_ID: strings(str(row.item_id)),
      features.GENRES_KEY: strings(*row.genres),
      features.RATING: ints(row.rating),
      features.TIMESTAMP: ints(row.timestamp),
      features.TITLE: strings(row.title),
      features.RELEASE_YEAR: ints(row.release_year),
      features.USER_AGE: ints(user.age),
      features.USER_GENDER: strings(user.gender),
      features.USER_OCCUPATION: strings(user.occupation),
      features.USER_ZIP: strings(user.zip_code),
      features.HISTORY: strings(*(str(item) for item in timeline_row.history)),
      features.HISTORY_LENGTH: ints(timeline_row.history_length),
  }))


def _load(data_dir: str) -> Tuple[List[movielens.Interaction], Dict[int, movielens.User]]:
  """The interactions and users of `data_dir`, on any filesystem TensorFlow
  reads (gs://, s3://, ...).

  The reader opens local files only, so remote files are copied to a local
  temporary directory first; format errors still name the original file.
  """
  def load(local_dir):
    interactions, _ = movielens.load_movielens(local_dir)
    return interactions, movielens.load_users(local_dir)

  if "://" not in data_dir:
    return load(data_dir)
  remote = data_dir.rstrip("/")
  with tempfile.TemporaryDirectory() as local_dir:
    for name in (movielens.ITEMS_FILE, movielens.RATINGS_FILE, movielens.USERS_FILE):
      if name != movielens.USERS_FILE or tf.io.gfile.exists(f"{remote}/{name}"):
        tf.io.gfile.copy(f"{remote}/{name}", os.path.join(local_dir, name))
    try:
      return load(local_dir)
    except movielens.MovieLensFormatError as error:
      raise movielens.MovieLensFormatError(
          f"{remote}/{os.path.basename(error.path)}", error.line_number, error.reason) from None


def load_window(window: spans.SpanWindow
                 ) -> Tuple[List[movielens.Interaction], Dict[int, movielens.User]]:
  """The interactions of a window of local spans, each tagged with its span,
  and the newest span's users (the catalogue and the users only grow)."""
  newest = window.directory(window.newest)
  items = movielens.read_items(os.path.join(newest, movielens.ITEMS_FILE))
  interactions = [
      row._replace(span=span) for span in window.spans
      for row in movielens.read_interactions(
          os.path.join(window.directory(span), movielens.RATINGS_FILE), items)]
  return interactions, movielens.load_users(newest)


def split_examples(data_dir: str, split_name: str,
                   window: Optional[spans.SpanWindow] = None) -> Iterator[tf.train.Example]:
  """The tf.Examples of one split of the MovieLens files in `data_dir` (or
  of a window of its spans)."""
  for split, example in examples_by_split(data_dir, window):
    if split == split_name:
      yield example


def examples_by_split(data_dir: str, window: Optional[spans.SpanWindow] = None
                      ) -> Iterator[Tuple[str, tf.train.Example]]:
  """(split name, tf.Example) of every row of the MovieLens files in
  `data_dir`, or of a window of its spans (local ones), eval from the newest."""
  interactions, users = _load(data_dir) if window is None else load_window(window)
  eval_span = None if window is None else window.newest
  for timeline_row in movielens.timelines(interactions, eval_span=eval_span):
    yield timeline_row.split, to_example(
        timeline_row, users.get(timeline_row.interaction.user_id, movielens.UNKNOWN_USER))


def serialized_by_split(data_dir: str, window: Optional[spans.SpanWindow] = None
                        ) -> Iterator[Tuple[str, bytes]]:
  """(split name, serialized tf.Example) of every row, as the executor
  encodes them (wire_format: tests/test_movielens_beam.py checks these are
  examples_by_split's), in one process: for the reference statistics and
  the checks of the shipped data, at a fifth of examples_by_split's cost."""
  interactions, users = _load(data_dir) if window is None else load_window(window)
  eval_span = None if window is None else window.newest
  encoder, user_parts = wire_format.ExampleEncoder(), {}
  for timeline_row in movielens.timelines(interactions, eval_span=eval_span):
    user_id = timeline_row.interaction.user_id
    user_part = user_parts.get(user_id)
    if user_part is None:
      user_part = user_parts[user_id] = wire_format.user_entries(
          user_id, users.get(user_id, movielens.UNKNOWN_USER))
    yield timeline_row.split, encoder.encode(timeline_row, user_part)


def _numbered_lines(path: str) -> Iterator[Tuple[int, str]]:
  """(1-based line number, line) of the non-empty lines of `path`, on any
  filesystem Beam reads, cut at newlines as ReadFromText cuts them."""
  with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
    for line_number, raw in enumerate(stream, start=1):
      line = raw.decode(movielens.ENCODING).rstrip("\r\n")
      if line:
        yield line_number, line


def _check_ratings(path: str, lines: Iterable[Tuple[int, str]],
                   items: Dict[int, movielens.Item]) -> None:
  for _ in movielens.interactions_from_lines(path, lines, items):
    pass


def _first_error(path: str, error: movielens.MovieLensFormatError, check_file: Callable,
                 *side_inputs) -> movielens.MovieLensFormatError:
  """The error of the first bad line of `path`, as the sequential reader reports it.

  ReadFromText does not number lines (a file is read in parallel ranges), so
  `error`, found in a line of unknown position, is located by checking the
  file again in order with `check_file` (a movielens *_from_lines function).
  Only a failing run pays for that second read. If the file no longer fails
  (it changed under the run), `error` itself is returned.
  """
  try:
    check_file(path, _numbered_lines(path), *side_inputs)
  except movielens.MovieLensFormatError as located:
    return located
  return error


class _ParseLines(beam.DoFn):
  """Parses each line of one file with `parse` (a movielens parse_* function)."""

  def __init__(self, path: str, parse: Callable, check_file: Callable):
    super().__init__()
    self._path = path
    self._parse = parse
    self._check_file = check_file

  def process(self, raw: bytes, *side_inputs):
    line = raw.decode(movielens.ENCODING).rstrip("\r\n")
    if not line:
      return
    try:
      yield self._parse(self._path, _UNKNOWN_LINE, line, *side_inputs)
    except movielens.MovieLensFormatError as error:
      raise _first_error(self._path, error, self._check_file, *side_inputs) from None


# The line number a row's parse is given before its error is located.
_UNKNOWN_LINE = 0


class _ById(beam.CombineFn):
  """Rows of a small file (u.item, u.user) as one dict keyed by their id, the
  side input that every interaction is joined with; a duplicate id fails the
  run naming its line."""

  def __init__(self, path: str, id_name: str, check_file: Callable):
    super().__init__()
    self._path = path
    self._id_name = id_name
    self._check_file = check_file

  def create_accumulator(self) -> Dict[int, Any]:
    return {}

  def add_input(self, mutable_accumulator: Dict[int, Any], row) -> Dict[int, Any]:
    if row[0] in mutable_accumulator:
      self._fail(row[0])
    mutable_accumulator[row[0]] = row
    return mutable_accumulator

  def merge_accumulators(self, accumulators) -> Dict[int, Any]:
    merged: Dict[int, Any] = {}
    for accumulator in accumulators:
      for row in accumulator.values():
        self.add_input(merged, row)
    return merged

  def extract_output(self, accumulator: Dict[int, Any]) -> Dict[int, Any]:
    return accumulator

  def _fail(self, row_id: int):
    error = movielens.MovieLensFormatError(
        self._path, _UNKNOWN_LINE, f"duplicate {self._id_name} {row_id}")
    raise _first_error(self._path, error, self._check_file)


class _UserExamples(beam.DoFn):
  """One user's ratings -> their serialized tf.Examples, tagged by split;
  with `eval_span`, eval examples come from that span alone."""

  def __init__(self, eval_span: Optional[int]):
    super().__init__()
    self._eval_span = eval_span

  def setup(self):
    self._encoder = wire_format.ExampleEncoder()

  def process(self, user_ratings, items, users):
    user_id, ratings = user_ratings
    # Sorted so that the rows a split rule cannot tell apart (same time and
    # item) come in the same order on every runner.
    rows = [movielens.interaction(user_id, items[item_id], rating, timestamp, span)
            for item_id, rating, timestamp, span in sorted(ratings)]
    user_part = wire_format.user_entries(user_id, users.get(user_id, movielens.UNKNOWN_USER))
    for timeline_row in movielens.user_timeline(rows, eval_span=self._eval_span):
      yield beam.pvalue.TaggedOutput(timeline_row.split,
                                     self._encoder.encode(timeline_row, user_part))


class _UserRating:
  """Parses a u.data row of `span` keyed by its user:
  (user_id, (item_id, rating, timestamp, span))."""

  def __init__(self, span: int):
    self.span = span

  def __call__(self, path: str, line_number: int, line: str,
               items: Dict[int, movielens.Item]):
    user_id, item_id, rating, timestamp = movielens.parse_rating(path, line_number, line, items)
    return user_id, (item_id, rating, timestamp, self.span)


class Executor(CarvedSplitsExecutor):
  """Emits the train, validation and eval splits of a MovieLens-format directory."""

  def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                             exec_properties: Dict[str, Any]
                             ) -> Dict[str, beam.pvalue.PCollection]:
    """Overridden (as BaseExampleGenExecutor suggests for custom splitting)
    because which split a row goes to depends on all of its user's rows.

    The log is read and parsed in parallel (ReadFromText splits files into
    ranges), grouped by user (one user's timeline is all a worker holds at
    once) and joined with u.item and u.user, which are small, as side
    inputs. The base class writes each split with Beam's TFRecord sink.
    """
    data_dir = exec_properties[standard_component_specs.INPUT_BASE_KEY].rstrip("/")
    # Over a window, the catalogue and the users are the newest span's (they
    # only grow); each span's u.data holds the interactions that arrived in it.
    newest_dir = data_dir if self.window is None else self.window.directory(self.window.newest)
    items_path, users_path = (f"{newest_dir}/{name}"
                              for name in (movielens.ITEMS_FILE, movielens.USERS_FILE))
    ratings = ([(0, f"{data_dir}/{movielens.RATINGS_FILE}")] if self.window is None else
               [(span, f"{self.window.directory(span)}/{movielens.RATINGS_FILE}")
                for span in self.window.spans])

    def read(label: str, path: str) -> beam.PCollection:
      return pipeline | f"Read[{label}]" >> beam.io.ReadFromText(
          path, coder=beam.coders.BytesCoder())

    items = (read("items", items_path)
             | "ParseItems" >> beam.ParDo(
                 _ParseLines(items_path, movielens.parse_item, movielens.items_from_lines))
             | "ItemsById" >> beam.CombineGlobally(
                 _ById(items_path, "item_id", movielens.items_from_lines)))
    if FileSystems.exists(users_path):
      users = (read("users", users_path)
               | "ParseUsers" >> beam.ParDo(
                   _ParseLines(users_path, movielens.parse_user, movielens.users_from_lines))
               | "UsersById" >> beam.CombineGlobally(
                   _ById(users_path, "user_id", movielens.users_from_lines)))
    else:
      users = pipeline | "NoUsers" >> beam.Create([{}])
    parsed = [read(f"ratings@{span}", path)
              | f"ParseRatings@{span}" >> beam.ParDo(
                  _ParseLines(path, _UserRating(span), _check_ratings),
                  beam.pvalue.AsSingleton(items))
              for span, path in ratings]
    all_ratings = parsed[0] if len(parsed) == 1 else parsed | "JoinSpans" >> beam.Flatten()
    examples = (all_ratings
                | "ByUser" >> beam.GroupByKey()
                | "UserExamples" >> beam.ParDo(
                    _UserExamples(None if self.window is None else self.window.newest),
                    beam.pvalue.AsSingleton(items),
                    beam.pvalue.AsSingleton(users)).with_outputs(*OUTPUT_SPLITS))
    return {name: examples[name] for name in OUTPUT_SPLITS}
