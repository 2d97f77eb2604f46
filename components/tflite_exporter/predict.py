"""Predicts with an exported TFLite version, preparing raw input as an app would.

    python -m components.tflite_exporter.predict \\
        --model-dir OUTPUT/tflite/<family>/<version> --input FILE.json

FILE.json holds one raw instance or a list of them, in the form metadata.json
documents under preprocessing.raw_input (CNN: {"image": [784 ints 0..255]},
LSTM: {"text": "..."}, two-tower: {"user_id": "..."}).
The family adapter named in metadata.json applies the documented rule (and
any shipped file, such as a vocabulary) to build the model's inputs; the
outputs are printed as JSON, one object per instance.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from components.tflite_exporter import conversion, layout  # noqa: E402
from modules.common.contract import load_adapter  # noqa: E402


def predict(model_dir: str, instances):
  """{output name: array} for raw `instances`, via the version's adapter."""
  metadata = layout.read_metadata(model_dir)
  adapter = load_adapter(metadata["adapter"])
  with open(os.path.join(model_dir, metadata["model_file"]), "rb") as f:
    model_bytes = f.read()
  return conversion.run_tflite(model_bytes, adapter.prepare(instances, model_dir))


def _jsonable(value):
  """A row of an output as JSON: numbers as they are, strings (item ids, say)
  decoded from the bytes TFLite returns."""
  if isinstance(value, bytes):
    return value.decode("utf-8")
  if value.dtype.kind in "SO":
    return [_jsonable(v) for v in value]
  return value.tolist()


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model-dir", required=True,
                      help="an exported version directory (holds model.tflite, metadata.json)")
  parser.add_argument("--input", required=True, help="JSON file: a raw instance or a list")
  args = parser.parse_args(argv)
  with open(args.input) as f:
    instances = json.load(f)
  if isinstance(instances, dict):
    instances = [instances]
  outputs = predict(args.model_dir, instances)
  rows = [{name: _jsonable(value[i]) for name, value in outputs.items()}
          for i in range(len(instances))]
  json.dump(rows, sys.stdout)
  sys.stdout.write("\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
