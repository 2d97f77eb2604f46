"""Beam executor: MovieLens-format u.data + u.item -> tf.Examples, split by time.

The split is not a hash of each row: every user's latest interactions form the
eval split (modules/two_tower/movielens.time_split), which is the split the
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
from tfx.components.example_gen import base_example_gen_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT
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
  interactions, users = _load(data_dir)
  for timeline_row in movielens.timelines(interactions):
    if timeline_row.split == split_name:
      yield to_example(timeline_row,
                       users.get(timeline_row.interaction.user_id, movielens.UNKNOWN_USER))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(tf.train.Example)
def _MovieLensToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                        split_name: str) -> beam.pvalue.PCollection:
  """Reads the files on a worker (not while building the graph), then fans out.

  The time split needs every row of a user at once, so one element reads the
  whole log; Reshuffle spreads the examples over workers for what follows.
  """
  data_dir = exec_properties[standard_component_specs.INPUT_BASE_KEY]
  return (pipeline
          | "DataDir" >> beam.Create([data_dir])
          | "ReadAndSplit" >> beam.FlatMap(split_examples, split_name)
          | "Spread" >> beam.Reshuffle())


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
  """Emits the `train` and `eval` splits of a MovieLens-format directory."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    """A PTransform taking (exec_properties, split name): the split is decided
    by time per user, not by a file pattern, so it gets the split's name."""
    return _MovieLensToExample

  def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                             exec_properties: Dict[str, Any]
                             ) -> Dict[str, beam.pvalue.PCollection]:
    """One PCollection per input split, named `train` and `eval`.

    Overridden (as BaseExampleGenExecutor suggests for custom splitting)
    because the base class hands the transform a file pattern, while which
    rows go to a split depends on all of a user's rows.
    """
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
    names = [split.name for split in input_config.splits]
    if sorted(names) != sorted([TRAIN_SPLIT, EVAL_SPLIT]):
      raise ValueError(f"MovieLens ExampleGen makes exactly the splits "
                       f"{TRAIN_SPLIT!r} and {EVAL_SPLIT!r}, got {names}")
    to_examples = self.GetInputSourceToExamplePTransform()
    return {name: pipeline | f"InputToRecord[{name}]" >> to_examples(exec_properties, name)
            for name in names}
