"""Real-data helpers for module tests: run Transform through tft_beam, train.

Families share these so each test file stays about its own behaviour: read a
few shipped examples, analyse and transform them with the family's real
`preprocessing_fn`, write the transform graph and transformed examples as TFX
would, and build the FnArgs a Trainer would hand to `run_fn`.
"""
import glob
import os
import tempfile
from typing import Any, Callable, Dict, List, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils
from tfx.components.trainer import fn_args_utils
from tfx.utils import io_utils
from tfx_bsl.public import tfxio

from modules.common import contract
from runners import beam_presets


def load_schema(path: str) -> schema_pb2.Schema:
  return io_utils.parse_pbtxt_file(path, schema_pb2.Schema())


def read_serialized(pattern: str, limit: int) -> List[bytes]:
  """The first `limit` serialized tf.Examples of GZIP TFRecord files."""
  files = sorted(glob.glob(pattern))
  assert files, f"no files match {pattern}"
  dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit)
  return [record.numpy() for record in dataset]


def parse(serialized: List[bytes], schema: schema_pb2.Schema) -> Dict[str, tf.Tensor]:
  """Parses tf.Examples with the feature spec of `schema` (a batch of tensors)."""
  spec = schema_utils.schema_as_feature_spec(schema).feature_spec
  return tf.io.parse_example(tf.constant(serialized), spec)


def _rows(batch: Dict[str, np.ndarray], count: int) -> List[Dict[str, np.ndarray]]:
  return [{key: value[i] for key, value in batch.items()} for i in range(count)]


def _instance_values(value) -> List[np.ndarray]:
  """A parsed feature as per-row values; a VarLen (sparse) feature's rows differ in length."""
  if isinstance(value, tf.SparseTensor):
    return [np.array(row, dtype=object) for row in tf.RaggedTensor.from_sparse(value).to_list()]
  return value.numpy()


def decode(serialized: List[bytes], schema: schema_pb2.Schema) -> List[Dict[str, np.ndarray]]:
  """Parses tf.Examples into the instance dicts tft_beam's instance API takes."""
  parsed = parse(serialized, schema)
  return _rows({k: _instance_values(v) for k, v in parsed.items()}, len(serialized))


def analyze_and_transform(preprocessing_fn: Callable, instances: List[Dict],
                          schema: schema_pb2.Schema, transform_dir: str,
                          transformed_path: str) -> tft.TFTransformOutput:
  """Runs the real Transform analysis and writes transformed tf.Examples.

  Writes the transform graph to `transform_dir` and the transformed instances
  as one GZIP TFRecord file at `transformed_path`, as TFX's Transform does.
  """
  metadata = dataset_metadata.DatasetMetadata(schema)
  options = PipelineOptions(beam_presets.DIRECT_ARGS)  # in process, as the pipeline runs it
  with beam.Pipeline(options=options) as pipeline, tft_beam.Context(temp_dir=tempfile.mkdtemp()):
    (transformed, transformed_metadata), transform_fn = (
        (pipeline | beam.Create(instances), metadata)
        | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn))
    _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
    _ = (transformed
         | beam.Map(coder.encode)
         | beam.io.WriteToTFRecord(transformed_path, shard_name_template="",
                                   compression_type=beam.io.filesystem.CompressionTypes.GZIP))
  # Transform also records the raw schema; serving signatures parse with it.
  io_utils.write_pbtxt_file(
      os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR, "schema.pbtxt"),
      schema)
  return tft.TFTransformOutput(transform_dir)


def read_transformed(path: str, tft_output: tft.TFTransformOutput) -> Dict[str, np.ndarray]:
  """Transformed examples written by `analyze_and_transform`, as a batch."""
  serialized = read_serialized(path, limit=-1)
  spec = tft_output.transformed_feature_spec()
  return {k: v.numpy() for k, v in tf.io.parse_example(tf.constant(serialized), spec).items()}


def write_transformed(rows: List[Dict], transformed_schema, path: str) -> None:
  """Writes transformed instances as GZIP tf.Examples (Transform's output form)."""
  coder = tft.coders.ExampleProtoCoder(transformed_schema)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path, "GZIP") as writer:
    for row in rows:
      writer.write(coder.encode(row))


def _tf_dataset_factory(file_pattern, options, schema):
  return tfxio.TFExampleRecord(file_pattern=file_pattern, schema=schema,
                               telemetry_descriptors=["tests"]).TensorFlowDataset(options)


def transform_graph_dir(work_dir: str) -> str:
  """Where `train_family_model` writes the transform graph under `work_dir`."""
  return os.path.join(work_dir, "transform")


def transformed_examples_path(work_dir: str, split: str) -> str:
  """Where `train_family_model` writes a split's transformed examples."""
  return os.path.join(work_dir, "transformed", f"{split}.gz")


def make_fn_args(work_dir: str, transform_dir: str, train_files: List[str],
                 eval_files: List[str], train_steps: int, eval_steps: int = 1
                 ) -> fn_args_utils.FnArgs:
  """FnArgs as the Trainer builds them, over files these helpers wrote."""
  return fn_args_utils.FnArgs(
      train_files=train_files, eval_files=eval_files,
      transform_output=transform_dir,
      serving_model_dir=os.path.join(work_dir, "serving_model"),
      model_run_dir=os.path.join(work_dir, "model_run"),
      train_steps=train_steps, eval_steps=eval_steps, custom_config={},
      data_accessor=fn_args_utils.DataAccessor(
          tf_dataset_factory=_tf_dataset_factory,
          record_batch_factory=None, data_view_decode_fn=None))


def fn_args_over(work_dir: str, output_dir: str, train_steps: int,
                 custom_config: Optional[Dict[str, Any]] = None) -> fn_args_utils.FnArgs:
  """FnArgs over the transformed train and validation files that
  `train_family_model` wrote under `work_dir`, writing under `output_dir`."""
  fn_args = make_fn_args(output_dir, transform_graph_dir(work_dir),
                         [transformed_examples_path(work_dir, "train")],
                         [transformed_examples_path(work_dir, "validation")], train_steps)
  fn_args.custom_config = dict(custom_config or {})
  return fn_args


def train_family_model(run_fn: Callable, preprocessing_fn: Callable, schema_path: str,
                       train_serialized: List[bytes], validation_serialized: List[bytes],
                       work_dir: str, train_steps: int, base_model: Optional[str] = None,
                       warm_start_fraction: float = 0.0) -> str:
  """Transforms real examples, calls `run_fn` like the Trainer (train files
  and, as its eval files, the validation split's; `base_model` and the
  family's `warm_start_fraction` as the pipeline hands them on a new span);
  returns the export dir."""
  schema = load_schema(schema_path)
  train_path = transformed_examples_path(work_dir, "train")
  validation_path = transformed_examples_path(work_dir, "validation")
  tft_output = analyze_and_transform(preprocessing_fn, decode(train_serialized, schema), schema,
                                     transform_graph_dir(work_dir), train_path)
  validation_batch = tft_output.transform_raw_features(parse(validation_serialized, schema))
  validation_rows = _rows({k: v.numpy() for k, v in validation_batch.items()},
                          len(validation_serialized))
  write_transformed(validation_rows, tft_output.transformed_metadata.schema, validation_path)
  fn_args = fn_args_over(work_dir, work_dir, train_steps)
  if base_model:
    fn_args.base_model = base_model
    fn_args.custom_config = {contract.WARM_START_FRACTION_KEY: warm_start_fraction}
  run_fn(fn_args)
  return fn_args.serving_model_dir
