"""End to end: the Beam components on Spark. The CNN history's run of span 2
(tests/cnn_history.py: 640 train / 200 eval digits a span, a 60-step model
warm-started from the one served from span 1) ran with `--beam-preset spark`:
the runner started Beam's Spark job server for the run, in Spark's local[2]
mode, and ExampleGen, StatisticsGen, Transform and Evaluator ran on it as
portable Beam jobs, the SDK harness in the run's own process (LOOPBACK).
Each of StatisticsGen, Transform and Evaluator is then executed again on
Beam's in-process runner with the same inputs (tests/engine_parity.py): the
statistics, the transformed examples and the metrics must match."""
import glob
import os
import re

import pytest

from runners.layout import OutputLayout
from tests import e2e_helpers, engine_parity

pytestmark = pytest.mark.e2e


def _metadata_path(cnn_history) -> str:
  return OutputLayout(cnn_history.next_span_output_dir).metadata_path


def test_statistics_transform_and_evaluator_run_as_jobs_on_spark(cnn_history):
  result = cnn_history.next_span
  assert result.returncode == 0, result.stdout + result.stderr
  states = e2e_helpers.component_states(result.stdout)
  for component in engine_parity.ENGINE_COMPONENTS:
    assert states[component] == "executed", states
  engine_parity.assert_ran_as_portable_jobs(e2e_helpers.run_log(result.stdout))
  layout = OutputLayout(cnn_history.next_span_output_dir)
  (job_server_log,) = glob.glob(os.path.join(layout.logs_dir, "cnn-*-job-server.log"))
  with open(job_server_log, encoding="utf-8", errors="replace") as f:
    job_server = f.read()
  # Each Beam stage of the run (ExampleGen's too) was a Spark job that finished.
  started = re.findall(r"SparkPipelineRunner: Running job (\S+) on Spark master local\[2\]",
                       job_server)
  finished = re.findall(r"SparkPipelineRunner: Job (\S+) finished\.", job_server)
  assert len(started) >= 4 and finished == started, job_server[-3000:]


def test_statistics_match_the_in_process_runner(cnn_history, tmp_path):
  engine_parity.assert_statistics_match(_metadata_path(cnn_history), str(tmp_path))


def test_transformed_examples_match_the_in_process_runner(cnn_history, tmp_path):
  engine_parity.assert_transformed_examples_match(_metadata_path(cnn_history), str(tmp_path))


def test_metrics_match_the_in_process_runner(cnn_history, tmp_path):
  engine_parity.assert_metrics_match(_metadata_path(cnn_history), str(tmp_path))
