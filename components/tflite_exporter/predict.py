"""Predicts with an exported TFLite version, preparing raw input as an app would.

    python -m components.tflite_exporter.predict \\
        --model-dir OUTPUT/tflite/<family>[/<version>] --input FILE.json

--model-dir is one version directory, or the family's folder, whose newest
complete version (one with metadata.json, written last: see
components/publishing.py) is used and named on stderr.
FILE.json holds one raw instance or a list of them, in the form metadata.json
documents under preprocessing.raw_input (CNN: {"image": [784 ints 0..255]},
LSTM: {"text": "..."}, two-tower: {"user_id": "..."}).
The function metadata.json names as `app_input` applies the documented rule
(and any shipped file, such as a vocabulary) to build the model's inputs,
LiteRT runs model.tflite, and the outputs are printed as JSON, one object
per instance.
This is what an app does, and all it needs: numpy, LiteRT and the files of
the version, no TensorFlow (tests/tflite_testing.run_cli checks every run).
Exit status: 0 predicted, 2 bad arguments or input (a missing or unreadable
file, JSON that is not instances, a missing field, a wrong shape or value),
each named on stderr.
"""
import argparse
import json
import os
import sys
from typing import Any, Callable, Dict, List

from ai_edge_litert.interpreter import Interpreter

from components.quiet_startup import quiet_startup
from components.tflite_exporter import layout, runtime
from modules.common.contract import load_adapter, load_function

EXIT_BAD_INPUT = 2


class PredictInputError(ValueError):
  """Input the CLI cannot predict on; the message names the file and field."""


def version_dir(model_dir: str) -> str:
  """`model_dir` when it is a version; else its newest complete version."""
  if os.path.isfile(os.path.join(model_dir, layout.METADATA_FILE)):
    return model_dir
  if not os.path.isdir(model_dir):
    raise PredictInputError(f"--model-dir {model_dir}: no such directory")
  versions = layout.published_versions(model_dir)
  if not versions:
    raise PredictInputError(
        f"--model-dir {model_dir}: neither an exported version (no {layout.METADATA_FILE}) "
        f"nor a family folder with a complete version (a numbered directory holding "
        f"{layout.METADATA_FILE})")
  return os.path.join(model_dir, str(versions[-1]))


def read_instances(path: str) -> List[Dict[str, Any]]:
  """The raw instances in JSON file `path`: one object or a list of them."""
  try:
    with open(path, encoding="utf-8") as f:
      instances = json.load(f)
  except OSError as error:
    raise PredictInputError(f"--input {path}: {error.strerror}") from None
  except UnicodeDecodeError as error:
    raise PredictInputError(f"--input {path}: not UTF-8 text ({error.reason})") from None
  except json.JSONDecodeError as error:
    raise PredictInputError(f"--input {path}: not JSON: {error}") from None
  if isinstance(instances, dict):
    instances = [instances]
  if not isinstance(instances, list) or not instances:
    raise PredictInputError(f"--input {path}: expected a JSON object or a non-empty list "
                            f"of objects, got {type(instances).__name__}"
                            + (" (empty)" if instances == [] else ""))
  for index, instance in enumerate(instances):
    if not isinstance(instance, dict):
      raise PredictInputError(f"--input {path}: instance {index} is not a JSON object "
                              f"(got {type(instance).__name__})")
  return instances


def _read_metadata(model_dir: str) -> Dict[str, Any]:
  path = os.path.join(model_dir, layout.METADATA_FILE)
  try:
    metadata = layout.read_metadata(model_dir)
  except ValueError as error:
    raise PredictInputError(f"{path}: not JSON: {error}") from None
  for field in ("adapter", "model_file"):
    if field not in metadata:
      raise PredictInputError(f"{path}: no {field!r} field: not an exported TFLite version")
  return metadata


def predict(model_dir: str, instances, input_name: str = "instances"):
  """{output name: array} for raw `instances`, prepared by the rule metadata.json names.

  Raises PredictInputError naming the field, or the file, at fault.
  """
  metadata = _read_metadata(model_dir)
  expected = metadata.get("preprocessing", {}).get("raw_input", "see metadata.json")
  model_path = os.path.join(model_dir, metadata["model_file"])
  if not os.path.isfile(model_path):
    raise PredictInputError(f"{model_path}: missing (named by metadata.json model_file)")
  try:
    inputs = _app_input(metadata)(instances, model_dir)
  except KeyError as error:
    field = error.args[0]
    index = next((i for i, instance in enumerate(instances) if field not in instance), 0)
    raise PredictInputError(f"{input_name}: instance {index} has no field {field!r} "
                            f"(expected {expected})") from None
  except FileNotFoundError as error:
    raise PredictInputError(f"{error.filename}: missing from the exported version "
                            "(an incomplete copy?)") from None
  except (ValueError, TypeError) as error:
    raise PredictInputError(f"{input_name}: {error} (expected {expected})") from None
  try:
    return runtime.run(Interpreter(model_path=model_path).get_signature_runner(), inputs)
  except ValueError as error:  # The interpreter refuses what the rule built.
    raise PredictInputError(f"{input_name}: the model refused the prepared input: {error} "
                            f"(expected {expected})") from None


def _app_input(metadata: Dict[str, Any]) -> Callable[[List[Dict[str, Any]], str], Any]:
  """The raw-input rule's implementation metadata.json names; a version
  exported before it named one is prepared by its adapter (TensorFlow)."""
  if layout.APP_INPUT_KEY in metadata:
    return load_function(metadata[layout.APP_INPUT_KEY])
  return load_adapter(metadata["adapter"]).prepare


def _jsonable(value):
  """A row of an output as JSON: numbers as they are, strings (item ids, say)
  decoded from the bytes TFLite returns."""
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if value.dtype.kind in "SO":
    return [_jsonable(v) for v in value]
  return value.tolist()


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m components.tflite_exporter.predict",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--model-dir", required=True,
                      help="an exported version directory (holds model.tflite, metadata.json) "
                      "or the family's folder (its newest complete version is used)")
  parser.add_argument("--input", required=True, help="JSON file: a raw instance or a list")
  args = parser.parse_args(argv)
  try:
    instances = read_instances(args.input)
    model_dir = version_dir(args.model_dir)
    if model_dir != args.model_dir:
      print(f"Using version {os.path.basename(model_dir)} ({model_dir})", file=sys.stderr)
    outputs = predict(model_dir, instances, input_name=f"--input {args.input}")
  except PredictInputError as error:
    print(f"error: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT
  rows = [{name: _jsonable(value[i]) for name, value in outputs.items()}
          for i in range(len(instances))]
  json.dump(rows, sys.stdout)
  sys.stdout.write("\n")
  return 0


if __name__ == "__main__":
  quiet_startup()
  sys.exit(main())
