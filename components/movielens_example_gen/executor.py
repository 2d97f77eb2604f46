"""Beam executor: MovieLens-format u.data + u.item (+ u.user) -> tf.Examples,
split by time.

The split is not a hash of each row: every user's latest interactions form the
eval split (modules/two_tower/movielens.time_split), the ones before those the
validation split (movielens.user_timeline); eval is the split the
reference recalls (data/interactions/reference_recall.py) are computed on, so
the model's recall and the references are comparable. Parsing and the split
rule are imported from that module, not re-implemented, and a malformed row
fails the run with MovieLensFormatError naming the file and line.
"""
import os
import tempfile
from typing import Any, Dict, Iterator, List, Tuple

import apache_beam as beam
import tensorflow as tf
from tfx.types import standard_component_specs

from components.carved_splits import OUTPUT_SPLITS, CarvedSplitsExecutor
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


def split_examples(data_dir: str, split_name: str) -> Iterator[tf.train.Example]:
  """The tf.Examples of one split of the MovieLens files in `data_dir`."""
  for split, example in examples_by_split(data_dir):
    if split == split_name:
      yield example


def examples_by_split(data_dir: str) -> Iterator[Tuple[str, tf.train.Example]]:
  """(split name, tf.Example) of every row of the MovieLens files in `data_dir`."""
  interactions, users = _load(data_dir)
  for timeline_row in movielens.timelines(interactions):
    yield timeline_row.split, to_example(
        timeline_row, users.get(timeline_row.interaction.user_id, movielens.UNKNOWN_USER))


class Executor(CarvedSplitsExecutor):
  """Emits the train, validation and eval splits of a MovieLens-format directory."""

  def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                             exec_properties: Dict[str, Any]
                             ) -> Dict[str, beam.pvalue.PCollection]:
    """Overridden (as BaseExampleGenExecutor suggests for custom splitting)
    because which split a row goes to depends on all of its user's rows.

    The files are read on a worker (not while building the graph); the time
    split needs every row of a user at once, so one element reads the whole
    log, and Reshuffle spreads the examples over workers for what follows.
    """
    data_dir = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    tagged = (pipeline
              | "DataDir" >> beam.Create([data_dir])
              | "ReadAndSplit" >> beam.FlatMap(examples_by_split)
              | "Spread" >> beam.Reshuffle())
    parts = tagged | "BySplit" >> beam.Partition(
        lambda pair, _: OUTPUT_SPLITS.index(pair[0]), len(OUTPUT_SPLITS))
    return {name: part | f"Examples[{name}]" >> beam.Values()
            for name, part in zip(OUTPUT_SPLITS, parts)}
