"""The CNN's compressions at its default steps: size, accuracy and latency of
each export beside the uncompressed float one, on the full eval split.

Runs `local_runner.py --model cnn --compression C` for none, pruning and qat
(each in its own output directory, the Beam stages in process) and measures,
on every eval example of the run:

- the pushed SavedModel's accuracy (serving_default, what TF Serving returns
  and TFMA gates) and the TFLite export's (on the features the SavedModel's
  own Transform layer makes);
- the export's size and its gzip size (what a phone downloads);
- one TFLite invocation's p50 latency on this machine;
- beside QAT, the uncompressed model converted post-training to int8 (the
  exporter's `int8` mode, calibrated as it calibrates), the baseline QAT
  must match;
- each export's accuracy change from the uncompressed float export, with a
  95% paired bootstrap interval over the eval digits: on 1,000 digits one
  digit is 0.1 points, the size of the QAT target.

Writes bench/results/compression/cnn.json; `bench/run_bench.py
--markdown-only` puts it into BENCHMARKS.md with the issue's targets.

  .venv/bin/python bench/compression.py [--output-root DIR] [--reuse]
"""
import argparse
import datetime
import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=wrong-import-position
import tensorflow as tf  # noqa: E402

from bench.run_bench import DIRECT, machine, tflite_latency  # noqa: E402
from components.tflite_exporter import component as tflite_component  # noqa: E402
from components.tflite_exporter import conversion, executor, layout  # noqa: E402
from modules.cnn import features  # noqa: E402
from modules.common import contract  # noqa: E402
from pipeline import configs  # noqa: E402
from runners.layout import OutputLayout  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "results", "compression")
FAMILY = configs.CNN
# Issue targets: the pruned export's gzip size at most this share of the
# float export's, its accuracy within PRUNED_MAX_ACCURACY_DROP; QAT's int8
# accuracy within QAT_MAX_ACCURACY_DROP of the float model's.
PRUNED_MAX_GZIP_RATIO = 0.35
PRUNED_MAX_ACCURACY_DROP = 0.003
QAT_MAX_ACCURACY_DROP = 0.001
BOOTSTRAP_RESAMPLES = 2000


def newest(pattern: str) -> str:
  found = sorted(glob.glob(pattern))
  if not found:
    raise FileNotFoundError(f"nothing matches {pattern}")
  return found[-1]


def eval_examples(output_dir: str) -> List[bytes]:
  """Every serialized example of the run's eval split."""
  split = newest(os.path.join(OutputLayout(output_dir).pipeline_root, "TFRecordExampleGen",
                              "examples", "*", "Split-eval"))
  return [record.numpy() for record in
          tf.data.TFRecordDataset(glob.glob(os.path.join(split, "*")), "GZIP")]


def correct(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Per example, whether its most probable class is its label."""
  return np.argmax(probabilities, axis=-1) == labels


def accuracy_change(candidate: np.ndarray, reference: np.ndarray) -> Dict:
  """candidate's accuracy minus reference's on the same examples, with the
  95% interval of a paired bootstrap (examples resampled together)."""
  rng = np.random.default_rng(0)
  difference = candidate.astype(np.float64) - reference.astype(np.float64)
  resampled = rng.integers(0, len(difference), size=(BOOTSTRAP_RESAMPLES, len(difference)))
  low, high = np.percentile(difference[resampled].mean(axis=1), [2.5, 97.5])
  return {"value": float(difference.mean()), "ci95": [float(low), float(high)]}


def measure_export(saved_model, model_bytes: bytes, serialized: List[bytes],
                   repeats: int) -> Dict:
  """Size, per-example correctness and latency of one TFLite export of
  `saved_model` (its correctness is dropped before writing)."""
  transformed = saved_model.signatures[contract.TRANSFORM_SIGNATURE](
      examples=tf.constant(serialized))
  image_key = features.transformed_name(features.IMAGE_KEY)
  inputs = {image_key: transformed[image_key].numpy()}
  labels = transformed[features.LABEL_KEY].numpy().reshape(-1)
  tflite_correct = correct(conversion.run_tflite(model_bytes, inputs)[features.PROBABILITIES],
                           labels)
  return {"size_bytes": len(model_bytes),
          "gzip_size_bytes": len(gzip.compress(model_bytes, compresslevel=9)),
          "tflite_accuracy": float(tflite_correct.mean()), "tflite_correct": tflite_correct,
          "p50_ms": tflite_latency(model_bytes, inputs, repeats)["p50_ms"]}


def measure_run(output_dir: str, compression: str, repeats: int) -> List[Dict]:
  """The run's pushed model and TFLite export; for `none`, also its
  post-training int8 conversion."""
  serialized = eval_examples(output_dir)
  out_layout = OutputLayout(output_dir)
  serving_version = newest(os.path.join(out_layout.serving_dir(FAMILY.name), "[0-9]*"))
  tflite_version = newest(os.path.join(out_layout.tflite_dir(FAMILY.name), "[0-9]*"))
  metadata = layout.read_metadata(tflite_version)
  saved_model = tf.saved_model.load(serving_version)
  served = saved_model.signatures[contract.SERVING_DEFAULT](examples=tf.constant(serialized))
  labels = saved_model.signatures[contract.TRANSFORM_SIGNATURE](
      examples=tf.constant(serialized))[features.LABEL_KEY].numpy().reshape(-1)
  savedmodel_accuracy = float(correct(served[features.PROBABILITIES].numpy(), labels).mean())
  with open(os.path.join(tflite_version, layout.MODEL_FILE), "rb") as f:
    model_bytes = f.read()
  rows = [{"compression": compression, "tflite": metadata["quantization"],
           "eval_examples": len(serialized), "savedmodel_accuracy": savedmodel_accuracy,
           **measure_export(saved_model, model_bytes, serialized, repeats),
           "parity_gate": metadata["parity"]}]
  if compression == contract.NO_COMPRESSION:
    adapter = contract.load_adapter(FAMILY.tflite_adapter)
    model = adapter.model_for_conversion(saved_model, serving_version, None)
    ptq_bytes, parity = executor.convert_with_parity(
        adapter, saved_model, model,
        tf.constant(serialized[:tflite_component.DEFAULT_PARITY_EXAMPLES]), contract.INT8,
        tflite_component.DEFAULT_REPRESENTATIVE_EXAMPLES)
    rows.append({"compression": compression, "tflite": f"{contract.INT8} (post-training)",
                 "eval_examples": len(serialized), "savedmodel_accuracy": savedmodel_accuracy,
                 **measure_export(saved_model, ptq_bytes, serialized, repeats),
                 "parity_gate": parity})
  return rows


def run(compression: str, output_dir: str) -> float:
  """Runs the CNN pipeline with `compression`; returns its wall seconds."""
  started = time.monotonic()
  with open(os.path.join(output_dir + ".log"), "w", encoding="utf-8") as log:
    subprocess.run([sys.executable, os.path.join(REPO, "local_runner.py"), "--model",
                    FAMILY.name, "--compression", compression, "--output-dir", output_dir,
                    *DIRECT], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)
  return time.monotonic() - started


def with_accuracy_changes(rows: List[Dict]) -> List[Dict]:
  """The rows without their per-example correctness, each with its accuracy
  change from the uncompressed float export."""
  plain = _row(rows, contract.NO_COMPRESSION, contract.FLOAT32)["tflite_correct"]
  return [{**{key: value for key, value in row.items() if key != "tflite_correct"},
           "accuracy_change_from_float": accuracy_change(row["tflite_correct"], plain)}
          for row in rows]


def _row(rows: List[Dict], compression: str, tflite: str) -> Dict:
  return next(row for row in rows if (row["compression"], row["tflite"]) == (compression, tflite))


def targets(rows: List[Dict]) -> Dict:
  """The issue's targets, each with the figures it compares and whether met."""
  plain = _row(rows, contract.NO_COMPRESSION, contract.FLOAT32)
  pruned = _row(rows, contract.PRUNING, contract.FLOAT32)
  qat = _row(rows, contract.QAT, contract.INT8)
  ptq = _row(rows, contract.NO_COMPRESSION, f"{contract.INT8} (post-training)")
  gzip_ratio = pruned["gzip_size_bytes"] / plain["gzip_size_bytes"]
  pruned_drop = -pruned["accuracy_change_from_float"]["value"]
  qat_drop = -qat["accuracy_change_from_float"]["value"]
  return {
      "pruned_gzip_ratio": {"value": gzip_ratio, "goal": PRUNED_MAX_GZIP_RATIO,
                            "met": gzip_ratio <= PRUNED_MAX_GZIP_RATIO},
      "pruned_accuracy_drop": {"value": pruned_drop, "goal": PRUNED_MAX_ACCURACY_DROP,
                               "met": pruned_drop <= PRUNED_MAX_ACCURACY_DROP},
      "qat_int8_accuracy_drop": {"value": qat_drop, "goal": QAT_MAX_ACCURACY_DROP,
                                 "met": qat_drop <= QAT_MAX_ACCURACY_DROP},
      "qat_minus_post_training_int8_accuracy": {
          "value": qat["tflite_accuracy"] - ptq["tflite_accuracy"], "goal": 0.0,
          "met": qat["tflite_accuracy"] >= ptq["tflite_accuracy"]},
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output-root", default=None,
                      help="where the runs go, one folder per compression (default: a new "
                           "temporary folder)")
  parser.add_argument("--reuse", action="store_true",
                      help="measure the runs already under --output-root instead of running")
  parser.add_argument("--repeats", type=int, default=300, help="TFLite invocations timed")
  args = parser.parse_args(argv)
  if args.reuse and not args.output_root:
    parser.error("--reuse needs --output-root")
  root = args.output_root or tempfile.mkdtemp(prefix="bench-compression-")
  rows, wall = [], {}
  for compression in contract.COMPRESSIONS:
    output_dir = os.path.join(root, compression)
    if not args.reuse:
      wall[compression] = round(run(compression, output_dir))
    rows += measure_run(output_dir, compression, args.repeats)
  rows = with_accuracy_changes(rows)
  figures = {"machine": machine(), "family": FAMILY.name, "train_steps": FAMILY.train_steps,
             "date": datetime.date.today().isoformat(), "run_wall_s": wall, "rows": rows,
             "targets": targets(rows)}
  os.makedirs(RESULTS, exist_ok=True)
  with open(os.path.join(RESULTS, f"{FAMILY.name}.json"), "w", encoding="utf-8") as f:
    json.dump(figures, f, indent=2)
  print(json.dumps({key: figures[key] for key in ("run_wall_s", "targets")}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
