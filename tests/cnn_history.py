"""One CNN run history that several end-to-end modules assert on.

The CNN end-to-end tests, the evaluation-report tests and the reliability
tests all need the same history on one output directory: a good run killed
during training (as an out-of-memory kill or a lost machine would), the
same run again resuming from its cached upstream results with a model
blessed and pushed, that run again (every component cached), then a far
worse model that the change threshold refuses, and that refusal again under
`--require-blessing`, all on the digits of span 1. Then the data moves on:
the next slice of digits arrives as span 2 and, on a copy of that output
directory, runs as a new day's data runs (the window of both spans, eval
from span 2, warm-started from the model served from span 1, judged
against it), its Beam stages on Spark (`--beam-preset spark`: Beam's Spark
job server in local[2] mode, tests/test_spark_e2e.py); on another copy, a span 3 whose pixels break the schema
stops at the data gate; and on a copy of the next span's output, a span 3
of mostly 7s, alone in its window (no skew), drifts from what the served
model learnt: it stops, and runs once a person accepts the drift. Made once
per test session (tests/conftest.py sends every test
that uses it to one pytest-xdist worker), on small slices of the shipped
digits.
"""
import dataclasses
import os
import shutil
import subprocess
from typing import List

import pytest

from pipeline import configs
from tests import e2e_helpers

MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
N_TRAIN, N_EVAL = 640, 200
# 60 steps: eval accuracy 0.825 on this slice, well above the floor.
GOOD_STEPS, GOOD_FLOOR = 60, 0.7
# The good run is killed this long after its Trainer starts (it trains for
# 10-15 s here).
KILL_DELAY_S = 5
# One step: above an absolute floor of 0, far below the good model, so only
# the comparison with the blessed baseline can refuse it.
WORSE_STEPS, WORSE_FLOOR = 1, 0.0
# The next span's run hands its Beam stages to Spark: the runner starts
# Beam's Spark job server (local[2]) for it (components/job_servers.py).
ON_SPARK = ("--beam-preset", "spark")


def run_args(data_dir: str, output_dir: str, steps: int, floor: float, *extra: str):
  return ["--model", "cnn", "--data-dir", data_dir, "--output-dir", output_dir,
          "--train-steps", str(steps), "--min-metric", str(floor), *extra]


@dataclasses.dataclass(frozen=True)
class CnnHistory:
  data_dir: str                                # span-1/ (then span-2/ too) of digits
  output_dir: str
  killed_stdout: str                           # the good run's output until it was killed
  pushed_after_kill: List[str]                 # the serving versions the kill left
  good: subprocess.CompletedProcess            # resumed: blessed (no baseline yet), pushed
  rerun: subprocess.CompletedProcess           # the good run again, nothing changed
  worse: subprocess.CompletedProcess           # refused against the good model
  worse_required: subprocess.CompletedProcess  # the same run, --require-blessing
  next_span_output_dir: str                    # a copy of output_dir before the next span's run
  next_span: subprocess.CompletedProcess       # the good run's arguments once span 2 arrived, on Spark
  broken_span_output_dir: str                  # a copy of output_dir before the broken span's run
  broken_span: subprocess.CompletedProcess     # the good run's arguments with a broken span 3
  drifted_span_output_dir: str                 # a copy of next_span_output_dir, then:
  drifted_span: subprocess.CompletedProcess    # a span 3 of mostly 7s, --window 1
  accepted_drift: subprocess.CompletedProcess  # the same with --accept-drift

  @property
  def first_span_dir(self) -> str:
    return os.path.join(self.data_dir, "span-1")

  @property
  def second_span_dir(self) -> str:
    return os.path.join(self.data_dir, "span-2")

  def good_args_on(self, data_dir: str):
    """The good run's arguments on another data directory (into the same
    output directory)."""
    return run_args(data_dir, self.output_dir, GOOD_STEPS, GOOD_FLOOR)


@pytest.fixture(scope="session")
def cnn_history(tmp_path_factory) -> CnnHistory:
  data_dir = str(tmp_path_factory.mktemp("digit-spans"))
  e2e_helpers.write_small_slice(MNIST, os.path.join(data_dir, "span-1"), N_TRAIN, N_EVAL)
  output_dir = str(tmp_path_factory.mktemp("cnn-history"))
  good_args = run_args(data_dir, output_dir, GOOD_STEPS, GOOD_FLOOR, "--require-blessing")
  killed_stdout = e2e_helpers.run_pipeline_killed_at(good_args, "Trainer", KILL_DELAY_S)
  pushed_after_kill = e2e_helpers.pushed_versions(e2e_helpers.serving_dir(output_dir, "cnn"))
  runs = []
  for steps, floor, extra in ((GOOD_STEPS, GOOD_FLOOR, ["--require-blessing"]),
                              (GOOD_STEPS, GOOD_FLOOR, ["--require-blessing"]),
                              (WORSE_STEPS, WORSE_FLOOR, []),
                              (WORSE_STEPS, WORSE_FLOOR, ["--require-blessing"])):
    runs.append(e2e_helpers.run_pipeline(run_args(data_dir, output_dir, steps, floor, *extra)))
  for result in runs[:3]:
    assert result.returncode == 0, result.stdout + result.stderr
  e2e_helpers.write_small_slice(MNIST, os.path.join(data_dir, "span-2"), N_TRAIN, N_EVAL,
                                part=1)
  next_span_output_dir = str(tmp_path_factory.mktemp("cnn-next-span") / "outputs")
  shutil.copytree(output_dir, next_span_output_dir)
  next_span = e2e_helpers.run_pipeline(
      run_args(data_dir, next_span_output_dir, GOOD_STEPS, GOOD_FLOOR, *ON_SPARK))
  assert next_span.returncode == 0, next_span.stdout + next_span.stderr
  broken_data_dir = str(tmp_path_factory.mktemp("digit-spans-broken") / "data")
  shutil.copytree(data_dir, broken_data_dir)
  e2e_helpers.write_small_slice(MNIST, os.path.join(broken_data_dir, "span-3"), N_TRAIN,
                                N_EVAL, _pixel_out_of_range, part=2)
  broken_span_output_dir = str(tmp_path_factory.mktemp("cnn-broken-span") / "outputs")
  shutil.copytree(output_dir, broken_span_output_dir)
  broken_span = e2e_helpers.run_pipeline(
      run_args(broken_data_dir, broken_span_output_dir, GOOD_STEPS, GOOD_FLOOR))
  drifted_data_dir = str(tmp_path_factory.mktemp("digit-spans-drifted") / "data")
  shutil.copytree(data_dir, drifted_data_dir)
  e2e_helpers.write_small_slice(MNIST, os.path.join(drifted_data_dir, "span-3"), N_TRAIN,
                                N_EVAL, _mostly_sevens, part=2,
                                transform_splits=("train", "eval"))
  drifted_span_output_dir = str(tmp_path_factory.mktemp("cnn-drifted-span") / "outputs")
  shutil.copytree(next_span_output_dir, drifted_span_output_dir)
  drifted_args = run_args(drifted_data_dir, drifted_span_output_dir, GOOD_STEPS, GOOD_FLOOR,
                          "--window", "1")
  drifted_span = e2e_helpers.run_pipeline(drifted_args)
  accepted_drift = e2e_helpers.run_pipeline([*drifted_args, "--accept-drift"])
  return CnnHistory(data_dir, output_dir, killed_stdout, pushed_after_kill, *runs,
                    next_span_output_dir, next_span, broken_span_output_dir, broken_span,
                    drifted_span_output_dir, drifted_span, accepted_drift)


def _mostly_sevens(example, index: int) -> None:
  """Four digits in five become 7s: valid values, drifted shares."""
  if index % 5:
    example.features.feature["label"].int64_list.value[:] = [7]


def _pixel_out_of_range(example, index: int) -> None:
  """Every tenth digit gets a pixel value no image can have."""
  if index % 10 == 0:
    example.features.feature["image"].int64_list.value[0] = 4096
