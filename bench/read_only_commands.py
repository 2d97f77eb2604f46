"""Latency and peak memory of the read-only commands, each a whole process as a user runs it.

For every family with an evaluation and a TFLite export in OUT, runs
`python -m runners.review` (showing the latest evaluation, and `--list`) and
the TFLite prediction CLI on one real eval instance, --repeats times each,
each in a fresh interpreter, nothing else started by this script meanwhile.
Records the median wall seconds (start to exit) and the median peak RSS of
the command's process (as GNU time's %M reports it) beside issue 33's goals:
showing and listing at most 1 s and 150 MiB, predicting one CNN digit at
most 0.5 s and 120 MiB. Writes bench/results/read_only/commands.json;
`bench/run_bench.py --markdown-only` puts the table into BENCHMARKS.md.

  .venv/bin/python bench/read_only_commands.py --output-dir OUT [--repeats 5]

OUT is the local runner's output directory after a run of each family
(`local_runner.py --model F --output-dir OUT`).
"""
import argparse
import datetime
import glob
import json
import os
import statistics
import sys
import tempfile
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=wrong-import-position
import tensorflow as tf  # noqa: E402

from bench.run_bench import machine, measured_run  # noqa: E402
from components.tflite_exporter import layout  # noqa: E402
from modules.cnn import features as cnn_features  # noqa: E402
from modules.lstm import features as lstm_features  # noqa: E402
from modules.two_tower import app_input as two_tower_input  # noqa: E402
from modules.two_tower import features as two_tower_features  # noqa: E402
from pipeline import configs  # noqa: E402
from runners.layout import OutputLayout  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "results", "read_only", "commands.json")
# Issue 33's goals: (seconds, MiB) per command; predict's is for one CNN digit.
GOALS = {"review": (1.0, 150), "review --list": (1.0, 150), "predict": (0.5, 120)}
GOAL_FAMILIES = {"review": None, "review --list": None, "predict": "cnn"}


def timed(command: List[str]) -> Dict[str, float]:
  """Wall seconds and peak RSS (MiB) of one run of `command` alone, which
  must succeed (run_bench.measured_run)."""
  result, usage = measured_run(command)
  if result.returncode != 0:
    raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
  return {"wall_s": usage["wall_s"], "peak_mib": usage["peak_rss_kb"] / 1024}


def _first_eval_example(family: configs.FamilyConfig) -> tf.train.Example:
  files = sorted(glob.glob(os.path.join(configs.DEFAULT_DATA_ROOT, family.data_subdir,
                                        "eval", "*")))
  record = next(iter(tf.data.TFRecordDataset(files[:1], compression_type="GZIP")))
  return tf.train.Example.FromString(record.numpy())


def instance(family: configs.FamilyConfig, version_dir: str) -> dict:
  """One real raw instance of the family, as its app would send it."""
  if family.name == "cnn":
    feature = _first_eval_example(family).features.feature[cnn_features.IMAGE_KEY]
    return {cnn_features.IMAGE_KEY: [int(v) for v in feature.int64_list.value]}
  if family.name == "lstm":
    feature = _first_eval_example(family).features.feature[lstm_features.TEXT_KEY]
    return {lstm_features.TEXT_KEY: feature.bytes_list.value[0].decode("utf-8")}
  with open(os.path.join(version_dir, two_tower_input.VOCABULARY_FILE), encoding="utf-8") as f:
    return {two_tower_features.USER_ID: f.readline().rstrip("\n")}


def commands(family: configs.FamilyConfig, output_dir: str,
             scratch: str) -> Dict[str, List[str]]:
  """{command name: argv} of the family's read-only commands."""
  review = [sys.executable, "-m", "runners.review", "--model", family.name,
            "--output-dir", output_dir]
  found = {"review": review, "review --list": [*review, "--list"]}
  tflite_dir = OutputLayout(output_dir).tflite_dir(family.name)
  versions = layout.published_versions(tflite_dir) if os.path.isdir(tflite_dir) else []
  if versions:
    version_dir = os.path.join(tflite_dir, str(versions[-1]))
    input_path = os.path.join(scratch, f"{family.name}.json")
    with open(input_path, "w", encoding="utf-8") as f:
      json.dump(instance(family, version_dir), f)
    found["predict"] = [sys.executable, "-m", "components.tflite_exporter.predict",
                        "--model-dir", version_dir, "--input", input_path]
  return found


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output-dir", required=True,
                      help="the local runner's output directory, with a run of each family")
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args(argv)
  output_dir = os.path.abspath(args.output_dir)
  rows = []
  with tempfile.TemporaryDirectory() as scratch:
    for family in configs.FAMILIES.values():
      for name, command in commands(family, output_dir, scratch).items():
        runs = [timed(command) for _ in range(args.repeats)]
        wall = statistics.median(run["wall_s"] for run in runs)
        peak = statistics.median(run["peak_mib"] for run in runs)
        goal_s, goal_mib = GOALS[name]
        has_goal = GOAL_FAMILIES[name] in (None, family.name)
        rows.append({"family": family.name, "command": name, "wall_s": round(wall, 3),
                     "peak_mib": round(peak, 1),
                     "runs": [{k: round(v, 3) for k, v in run.items()} for run in runs],
                     "goal": {"wall_s": goal_s, "peak_mib": goal_mib} if has_goal else None,
                     "met": (wall <= goal_s and peak <= goal_mib) if has_goal else None})
        print(f"{family.name:<10} {name:<14} {wall:6.3f} s {peak:7.1f} MiB", flush=True)
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  with open(RESULTS, "w", encoding="utf-8") as f:
    json.dump({"date": datetime.date.today().isoformat(), "machine": machine(),
               "repeats": args.repeats, "rows": rows}, f, indent=2)
  return 0


if __name__ == "__main__":
  sys.exit(main())
