"""Each family's compressions at its default steps: size, quality and latency
of each TFLite export beside the uncompressed float one, on the full eval split.

For every compression the family takes (FamilyConfig.compressions), runs
`local_runner.py --model F --compression C` in its own output directory
(the Beam stages in process) and measures, on every eval example of the run:

- the family's TFLite quality metric (the parity gate's: the CNN's accuracy,
  the two-tower's recall@10 of the top 10 it returns) of the pushed
  SavedModel's serving_default (what TF Serving returns) and of the TFLite
  export (on the features the SavedModel's own Transform layer makes);
- its change from the uncompressed float export, with a 95% paired
  bootstrap interval over the eval examples: on the CNN's 1,000 digits one
  digit is 0.1 points, the size of its QAT target;
- the export's size and gzip size (what an app download costs), and one
  TFLite invocation's p50 latency on this machine;
- where the family converts to int8, the uncompressed model converted
  post-training (the exporter's `int8` mode, calibrated as it calibrates),
  the baseline quantization-aware training must match.

Writes bench/results/compression/<family>.json; `bench/run_bench.py
--markdown-only` puts them into BENCHMARKS.md with the CNN's targets.

  .venv/bin/python bench/compression.py --model cnn [--output-root DIR] [--reuse]
"""
import argparse
import datetime
import glob
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=wrong-import-position
import tensorflow as tf  # noqa: E402

from bench.run_bench import DIRECT, machine, tflite_latency  # noqa: E402
from components.tflite_exporter import component as tflite_component  # noqa: E402
from components.tflite_exporter import conversion, executor, layout  # noqa: E402
from modules.common import contract  # noqa: E402
from pipeline import configs  # noqa: E402
from runners.layout import OutputLayout  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "results", "compression")
# The CNN's targets (issue 31): the pruned export's gzip size at most this
# share of the float export's, its accuracy within PRUNED_MAX_ACCURACY_DROP;
# QAT's int8 accuracy within QAT_MAX_ACCURACY_DROP of the float model's.
PRUNED_MAX_GZIP_RATIO = 0.35
PRUNED_MAX_ACCURACY_DROP = 0.003
QAT_MAX_ACCURACY_DROP = 0.001
BOOTSTRAP_RESAMPLES = 2000
POST_TRAINING_INT8 = f"{contract.INT8} (post-training)"


def newest(pattern: str) -> str:
  found = sorted(glob.glob(pattern))
  if not found:
    raise FileNotFoundError(f"nothing matches {pattern}")
  return found[-1]


def eval_examples(output_dir: str) -> List[bytes]:
  """Every serialized example of the run's eval split, sorted: runs on the
  same data pair up example by example whatever order their shards hold."""
  split = newest(os.path.join(OutputLayout(output_dir).pipeline_root, "*ExampleGen",
                              "examples", "*", "Split-eval"))
  return sorted(record.numpy() for record in
                tf.data.TFRecordDataset(glob.glob(os.path.join(split, "*")), "GZIP"))


class EvalSplit:
  """The eval split as the parity gate sees it: the transformed batch (with
  the raw columns the quality metric reads), the TFLite inputs, and the
  SavedModel's serving_default outputs."""

  def __init__(self, adapter: contract.FamilyAdapter, saved_model, serialized: List[bytes]):
    self.adapter = adapter
    examples = tf.constant(serialized)
    self.batch = {name: value.numpy() for name, value in
                  saved_model.signatures[contract.TRANSFORM_SIGNATURE](examples=examples).items()}
    request, raw_columns = adapter.parity_request(examples)
    self.batch.update(raw_columns)
    self.inputs = {spec.name: self.batch[spec.name].astype(spec.dtype.as_numpy_dtype)
                   for spec in adapter.inputs}
    self.served = {name: value.numpy() for name, value in
                   saved_model.signatures[contract.SERVING_DEFAULT](**request).items()}
    self.size = len(serialized)
    self.digest = hashlib.sha256(b"".join(serialized)).hexdigest()

  def quality(self, outputs: Dict[str, np.ndarray],
              rows: Optional[np.ndarray] = None) -> float:
    """The adapter's quality metric of `outputs`, on `rows` of the split (all by default)."""
    if rows is None:
      return self.adapter.quality(self.batch, outputs)
    return self.adapter.quality({name: value[rows] for name, value in self.batch.items()},
                                {name: value[rows] for name, value in outputs.items()})

  def quality_change(self, candidate: Dict[str, np.ndarray],
                     reference: Dict[str, np.ndarray]) -> Dict:
    """candidate's quality minus reference's, with the 95% interval of a
    paired bootstrap (the same resampled examples for both)."""
    rng = np.random.default_rng(0)
    changes = [self.quality(candidate, rows) - self.quality(reference, rows)
               for rows in rng.integers(0, self.size, size=(BOOTSTRAP_RESAMPLES, self.size))]
    low, high = np.percentile(changes, [2.5, 97.5])
    return {"value": self.quality(candidate) - self.quality(reference),
            "ci95": [float(low), float(high)]}


def measure_export(split: EvalSplit, model_bytes: bytes, repeats: int) -> Dict:
  """Size, quality, outputs and latency of one TFLite model (its outputs
  are dropped before writing)."""
  outputs = conversion.run_tflite(model_bytes, split.inputs)
  return {"size_bytes": len(model_bytes),
          "gzip_size_bytes": len(gzip.compress(model_bytes, compresslevel=9)),
          "savedmodel_quality": split.quality(split.served),
          "tflite_quality": split.quality(outputs), "outputs": outputs,
          "p50_ms": tflite_latency(model_bytes, split.inputs, repeats)["p50_ms"]}


def measure_run(family: configs.FamilyConfig, output_dir: str, compression: str,
                repeats: int) -> Tuple[EvalSplit, List[Dict], Optional[Dict]]:
  """(the run's eval split, a row for its TFLite export and, for `none`
  where the family converts to int8, one for the pushed model converted
  post-training to int8, the float export's outputs for `none` else None)."""
  out_layout = OutputLayout(output_dir)
  serving_version = newest(os.path.join(out_layout.serving_dir(family.name), "[0-9]*"))
  tflite_version = newest(os.path.join(out_layout.tflite_dir(family.name), "[0-9]*"))
  metadata = layout.read_metadata(tflite_version)
  saved_model = tf.saved_model.load(serving_version)
  adapter = contract.load_adapter(family.tflite_adapter)
  serialized = eval_examples(output_dir)
  split = EvalSplit(adapter, saved_model, serialized)
  with open(os.path.join(tflite_version, layout.MODEL_FILE), "rb") as f:
    model_bytes = f.read()
  rows = [{"compression": compression, "tflite": metadata["quantization"],
           **measure_export(split, model_bytes, repeats), "parity_gate": metadata["parity"]}]
  takes_int8 = adapter.quantization_modes is None or contract.INT8 in adapter.quantization_modes
  if compression == contract.NO_COMPRESSION and takes_int8:
    model = adapter.model_for_conversion(saved_model, serving_version, None)
    ptq_bytes, parity = executor.convert_with_parity(
        adapter, saved_model, model,
        tf.constant(serialized[:tflite_component.DEFAULT_PARITY_EXAMPLES]), contract.INT8,
        tflite_component.DEFAULT_REPRESENTATIVE_EXAMPLES)
    rows.append({"compression": compression, "tflite": POST_TRAINING_INT8,
                 **measure_export(split, ptq_bytes, repeats), "parity_gate": parity})
  plain = rows[0]["outputs"] if compression == contract.NO_COMPRESSION else None
  return split, rows, plain


def run(family: configs.FamilyConfig, compression: str, output_dir: str,
        data_dir: Optional[str]) -> float:
  """Runs the family's pipeline with `compression`; returns its wall seconds."""
  data = ["--data-dir", data_dir] if data_dir else []
  started = time.monotonic()
  with open(output_dir + ".log", "w", encoding="utf-8") as log:
    subprocess.run([sys.executable, os.path.join(REPO, "local_runner.py"), "--model",
                    family.name, "--compression", compression, "--output-dir", output_dir,
                    *data, *DIRECT], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)
  return time.monotonic() - started


def _row(rows: List[Dict], compression: str, tflite: str) -> Dict:
  return next(row for row in rows if (row["compression"], row["tflite"]) == (compression, tflite))


def cnn_targets(rows: List[Dict]) -> Dict:
  """The issue's CNN targets, each with the figure it compares and whether met."""
  plain = _row(rows, contract.NO_COMPRESSION, contract.FLOAT32)
  pruned = _row(rows, contract.PRUNING, contract.FLOAT32)
  qat = _row(rows, contract.QAT, contract.INT8)
  ptq = _row(rows, contract.NO_COMPRESSION, POST_TRAINING_INT8)
  gzip_ratio = pruned["gzip_size_bytes"] / plain["gzip_size_bytes"]
  pruned_drop = -pruned["change_from_float"]["value"]
  qat_drop = -qat["change_from_float"]["value"]
  return {
      "pruned_gzip_ratio": {"value": gzip_ratio, "goal": PRUNED_MAX_GZIP_RATIO,
                            "met": gzip_ratio <= PRUNED_MAX_GZIP_RATIO},
      "pruned_accuracy_drop": {"value": pruned_drop, "goal": PRUNED_MAX_ACCURACY_DROP,
                               "met": pruned_drop <= PRUNED_MAX_ACCURACY_DROP},
      "qat_int8_accuracy_drop": {"value": qat_drop, "goal": QAT_MAX_ACCURACY_DROP,
                                 "met": qat_drop <= QAT_MAX_ACCURACY_DROP},
      "qat_minus_post_training_int8_accuracy": {
          "value": qat["tflite_quality"] - ptq["tflite_quality"], "goal": 0.0,
          "met": qat["tflite_quality"] >= ptq["tflite_quality"]},
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True,
                      choices=[name for name, family in configs.FAMILIES.items()
                               if len(family.compressions) > 1])
  parser.add_argument("--output-root", default=None,
                      help="where the runs go, one folder per compression (default: a new "
                           "temporary folder)")
  parser.add_argument("--data-dir", default=None, help="local_runner.py --data-dir")
  parser.add_argument("--reuse", action="store_true",
                      help="measure the runs already under --output-root instead of running")
  parser.add_argument("--repeats", type=int, default=300, help="TFLite invocations timed")
  args = parser.parse_args(argv)
  if args.reuse and not args.output_root:
    parser.error("--reuse needs --output-root")
  family = configs.FAMILIES[args.model]
  root = args.output_root or tempfile.mkdtemp(prefix=f"bench-compression-{family.name}-")
  measured, wall, plain = [], {}, None
  for compression in family.compressions:
    output_dir = os.path.join(root, compression)
    if not args.reuse:
      wall[compression] = round(run(family, compression, output_dir, args.data_dir))
    split, rows, none_outputs = measure_run(family, output_dir, compression, args.repeats)
    measured.append((split, rows))
    plain = none_outputs if none_outputs is not None else plain
  if len({split.digest for split, _ in measured}) != 1:
    raise ValueError(f"the runs under {root} evaluated different eval examples: "
                     "their quality changes cannot be paired")
  rows = [{**{key: value for key, value in row.items() if key != "outputs"},
           "change_from_float": split.quality_change(row["outputs"], plain)}
          for split, run_rows in measured for row in run_rows]
  adapter = contract.load_adapter(family.tflite_adapter)
  figures = {"machine": machine(), "family": family.name, "train_steps": family.train_steps,
             "metric": adapter.quality_metric, "eval_examples": measured[0][0].size,
             "date": datetime.date.today().isoformat(), "run_wall_s": wall, "rows": rows}
  if family is configs.CNN:
    figures["targets"] = cnn_targets(rows)
  os.makedirs(RESULTS, exist_ok=True)
  with open(os.path.join(RESULTS, f"{family.name}.json"), "w", encoding="utf-8") as f:
    json.dump(figures, f, indent=2)
  print(json.dumps({key: figures.get(key) for key in ("run_wall_s", "targets")}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
