"""Helpers for TFLiteExporter tests: a trained family model as TFX artifacts.

Families share these so each test file stays about its own adapter: train
with tests/tft_testing.py, lay the result out as the Trainer, Transform and
ExampleGen artifacts hold it, and run the exporter's executor exactly as TFX
calls it (real artifacts, real files, no orchestrator).
"""
import filecmp
import json
import os
import subprocess
import sys
import tempfile
from typing import Dict, List

import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.types import artifact_utils, standard_artifacts

from components.tflite_exporter import executor, layout, parity
from components.tflite_exporter.component import TFLiteExport
from modules.common import contract

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSION = "1700000000"  # The Pusher's pushed_version the exports must reuse.


def as_artifacts(work_dir: str, export_dir: str, eval_serialized: List[bytes]) -> Dict[str, str]:
  """URIs of Model, TransformGraph and Examples artifacts made of a
  `tft_testing.train_family_model(..., work_dir, ...)` run."""
  model_uri = os.path.join(work_dir, "model")
  os.makedirs(model_uri)
  os.rename(export_dir, os.path.join(model_uri, "Format-Serving"))
  examples_uri = os.path.join(work_dir, "examples")
  os.makedirs(os.path.join(examples_uri, "Split-eval"))
  with tf.io.TFRecordWriter(os.path.join(examples_uri, "Split-eval", "data_tfrecord-00000.gz"),
                            "GZIP") as writer:
    for record in eval_serialized:
      writer.write(record)
  # train_family_model writes the transform graph where TFX's Transform would.
  return {"model": model_uri, "transform": os.path.join(work_dir, "transform"),
          "examples": examples_uri}


def _artifact(kind, uri, **properties):
  artifact = kind()
  artifact.uri = uri
  for key, value in properties.items():
    if isinstance(value, int):
      artifact.set_int_custom_property(key, value)
    else:
      artifact.set_string_custom_property(key, value)
  return artifact


def run_exporter(artifacts: Dict[str, str], tflite_dir, family: str, adapter: str,
                 mode: str = contract.FLOAT32, blessed: int = 1, pushed: int = 1,
                 parity_examples: int = 200, representative_examples: int = 100):
  """Runs the executor as TFX would; returns the output TFLiteExport artifact."""
  export = _artifact(TFLiteExport, tempfile.mkdtemp(prefix="artifact-",
                                                    dir=os.path.dirname(tflite_dir)))
  examples = _artifact(standard_artifacts.Examples, artifacts["examples"])
  examples.split_names = artifact_utils.encode_split_names(["eval"])
  pushed_model = _artifact(standard_artifacts.PushedModel, "/unused", pushed=pushed)
  if pushed:
    pushed_model.set_string_custom_property("pushed_version", VERSION)
    pushed_model.set_string_custom_property("pushed_destination",
                                            f"/serving/{family}/{VERSION}")
  executor.Executor().Do(
      {executor.MODEL_KEY: [_artifact(standard_artifacts.Model, artifacts["model"])],
       executor.BLESSING_KEY: [_artifact(standard_artifacts.ModelBlessing, "/unused",
                                         blessed=blessed)],
       executor.PUSHED_MODEL_KEY: [pushed_model],
       executor.TRANSFORM_GRAPH_KEY: [_artifact(standard_artifacts.TransformGraph,
                                                artifacts["transform"])],
       executor.EXAMPLES_KEY: [examples]},
      {executor.EXPORT_KEY: [export]},
      {executor.FAMILY_KEY: family, executor.ADAPTER_KEY: adapter,
       executor.TFLITE_DIR_KEY: str(tflite_dir), executor.QUANTIZATION_KEY: mode,
       executor.PARITY_EXAMPLES_KEY: parity_examples,
       executor.REPRESENTATIVE_EXAMPLES_KEY: representative_examples})
  return export


def run_cli(version_dir: str, instances: List[dict], input_path: str) -> List[dict]:
  """Runs the prediction CLI as a user would; returns its per-instance outputs."""
  with open(input_path, "w") as f:
    json.dump(instances, f)
  result = subprocess.run(
      [sys.executable, "-m", "components.tflite_exporter.predict",
       "--model-dir", version_dir, "--input", input_path],
      cwd=REPO_ROOT, capture_output=True, text=True, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert result.returncode == 0, result.stderr
  return json.loads(result.stdout)


def assert_ships_vocabulary(artifacts: Dict[str, str], version_dir: str,
                            vocabulary_name: str, file_name: str) -> Dict:
  """The version holds the model, its metadata and Transform's vocabulary
  `vocabulary_name` byte for byte as `file_name`, which metadata.json lists
  and its preprocessing rule names. Returns the metadata."""
  assert sorted(os.listdir(version_dir)) == sorted(
      [layout.METADATA_FILE, layout.MODEL_FILE, file_name])
  vocabulary = tft.TFTransformOutput(artifacts["transform"]).vocabulary_file_by_name(
      vocabulary_name)
  assert filecmp.cmp(vocabulary, os.path.join(version_dir, file_name), shallow=False)
  metadata = layout.read_metadata(version_dir)
  assert metadata["extra_files"] == [file_name]
  assert file_name in metadata["preprocessing"]["rule"]
  return metadata


def assert_float32_parity_passed(metadata: Dict, metric: str) -> None:
  """metadata.json records a passed float32 parity gate on `metric`."""
  figures = metadata["parity"]
  assert figures["metric"] == metric and figures["passed"]
  assert figures["max_abs_diff"] <= parity.FLOAT_MAX_ABS_DIFF


def assert_int8_refused(artifacts: Dict[str, str], tflite_dir, family) -> None:
  """int8 export of `family` (a FamilyConfig whose adapter cannot take it)
  fails before anything is converted, naming the adapter, and writes nothing."""
  adapter = contract.load_adapter(family.tflite_adapter)
  with pytest.raises(ValueError,
                     match=f"'{contract.INT8}' is not supported by {type(adapter).__name__}"):
    run_exporter(artifacts, tflite_dir, family.name, family.tflite_adapter, mode=contract.INT8)
  assert not os.path.exists(tflite_dir)
