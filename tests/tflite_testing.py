"""Helpers for TFLiteExporter tests: a trained family model as TFX artifacts.

Families share these so each test file stays about its own adapter: train
with tests/tft_testing.py, lay the result out as the Trainer, Transform and
ExampleGen artifacts hold it, and run the exporter's executor exactly as TFX
calls it (real artifacts, real files, no orchestrator).
"""
import filecmp
import json
import os
import tempfile
from typing import Dict, List, Set, Tuple

from ai_edge_litert.interpreter import Interpreter as LiteRTInterpreter
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.types import artifact_utils, standard_artifacts

from components.tflite_exporter import executor, layout, model_metadata, parity, runtime
from components.tflite_exporter.component import TFLiteExport
from modules.common import contract
from tests import light_commands, tft_testing

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREDICT_CLI = "components.tflite_exporter.predict"
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
  return {"model": model_uri, "transform": tft_testing.transform_graph_dir(work_dir),
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
  """Runs the prediction CLI as a user would (`python -m
  components.tflite_exporter.predict`, a fresh interpreter), checks it ran
  as an app does, on LiteRT without loading TensorFlow, and returns its
  per-instance outputs."""
  with open(input_path, "w") as f:
    json.dump(instances, f)
  result, heavy = light_commands.run(PREDICT_CLI,
                                     ["--model-dir", version_dir, "--input", input_path])
  assert result.returncode == 0, result.stderr
  assert heavy == [], f"the prediction CLI loaded {heavy}"
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


def read_model(version_dir: str) -> bytes:
  with open(os.path.join(version_dir, layout.MODEL_FILE), "rb") as f:
    return f.read()


def embedded_tensors(version_dir: str) -> Dict[str, Dict]:
  """{tensor name: its embedded TensorMetadata} of an exported model, read
  back from model.tflite; the model-level fields are checked on the way."""
  embedded = model_metadata.read(read_model(version_dir))
  metadata = layout.read_metadata(version_dir)
  assert embedded["version"] == metadata["version"]
  assert embedded["author"] == model_metadata.AUTHOR
  assert embedded["name"] == metadata["title"] and embedded["description"] == metadata["description"]
  assert embedded["license"] == metadata["license"]
  assert embedded["min_parser_version"] == metadata["embedded_metadata"]["min_parser_version"]
  [subgraph] = embedded["subgraphs"]
  # TensorMetadata follow the subgraph's input and output tensors in order.
  assert ([t["name"] for t in subgraph["inputs"]],
          [t["name"] for t in subgraph["outputs"]]) == _subgraph_order(version_dir)
  tensors = {t["name"]: t for t in subgraph["inputs"] + subgraph["outputs"]}
  described = {t["name"]: t for t in metadata["inputs"] + metadata["outputs"]}
  for name, tensor in tensors.items():
    assert tensor["description"] == described[name]["description"]
  return tensors


def _subgraph_order(version_dir: str) -> Tuple[List[str], List[str]]:
  """Signature names of the subgraph's input and output tensors, in order."""
  interpreter = tf.lite.Interpreter(model_content=read_model(version_dir))
  runner = interpreter.get_signature_runner()
  names = {detail["index"]: name for details in (runner.get_input_details(),
                                                 runner.get_output_details())
           for name, detail in details.items()}
  return ([names[d["index"]] for d in interpreter.get_input_details()],
          [names[d["index"]] for d in interpreter.get_output_details()])


def assert_embeds_file(version_dir: str, tensor: Dict, file_name: str, file_type: str) -> None:
  """`tensor` (embedded metadata) names `file_name` as `file_type`, and the
  copy zipped into model.tflite is byte for byte the one shipped beside it."""
  assert [(f["name"], f["type"]) for f in tensor["associated_files"]] == [(file_name, file_type)]
  packed = model_metadata.associated_files(read_model(version_dir))
  with open(os.path.join(version_dir, file_name), "rb") as f:
    assert packed[file_name] == f.read()
  assert layout.read_metadata(version_dir)["embedded_metadata"]["associated_files"] == sorted(
      packed)


def assert_no_machine_paths(metadata: Dict, version_dir: str, source_model: str,
                            serving_model: str) -> None:
  """No absolute path anywhere in metadata.json; the source SavedModel and
  the serving version are named relative to the version directory."""
  def strings(value):
    if isinstance(value, dict):
      return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
      return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []
  absolute = [s for s in strings(metadata) if os.path.isabs(s) or version_dir in s]
  assert not absolute, f"machine paths in metadata.json: {absolute}"
  for key, expected in (("source_model_uri", source_model), ("serving_model", serving_model)):
    assert os.path.normpath(os.path.join(version_dir, metadata[key])) == expected, key


def run_litert(version_dir: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Outputs of model.tflite under LiteRT (ai-edge-litert), the runtime apps
  ship, fed as the prediction CLI feeds it."""
  return runtime.run(LiteRTInterpreter(
      model_path=os.path.join(version_dir, layout.MODEL_FILE)).get_signature_runner(), inputs)


def float_tensors_and_edges(model_path: str) -> Tuple[Set[str], Set[str]]:
  """(names of the model's float32 tensors, names of its inputs and outputs):
  equal for a full-integer model that takes and returns float tensors."""
  interpreter = tf.lite.Interpreter(model_path)
  float_tensors = {t["name"] for t in interpreter.get_tensor_details()
                   if t["dtype"] == np.float32}
  edges = ({d["name"] for d in interpreter.get_input_details()}
           | {d["name"] for d in interpreter.get_output_details()})
  return float_tensors, edges
