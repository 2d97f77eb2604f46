"""End to end: the Beam components on Flink. The run that won the shared race
(tests/raced_runs.py: 300 train / 100 eval digits, a 20-step model) ran with
`--beam-preset flink`: the runner started Beam's Flink job server on a Flink
MiniCluster ([local]) for the run, and StatisticsGen, Transform and
Evaluator ran on it as portable Beam jobs, the SDK harness in the run's own
process (LOOPBACK). Each of them is then executed again on Beam's
in-process runner with the same inputs (tests/engine_parity.py): the
statistics, the transformed examples and the metrics must match. The same
command again is answered from the cache: its job server listens where the
first one did (components/job_servers.stable_port)."""
import re

import pytest

from runners.layout import OutputLayout
from tests import e2e_helpers, engine_parity

pytestmark = pytest.mark.e2e


def _metadata_path(raced_runs) -> str:
  return OutputLayout(raced_runs.output_dir).metadata_path


def test_statistics_transform_and_evaluator_run_as_jobs_on_flink(raced_runs):
  result = raced_runs.winner
  assert result.returncode == 0, result.stdout + result.stderr
  states = e2e_helpers.component_states(result.stdout)
  for component in engine_parity.ENGINE_COMPONENTS:
    assert states[component] == "executed", states
  layout = OutputLayout(raced_runs.output_dir)
  run_id = e2e_helpers.run_id_of(result.stdout)
  with open(layout.log_path("cnn", run_id), encoding="utf-8") as f:
    engine_parity.assert_ran_as_portable_jobs(f.read())
  with open(layout.job_server_log_path("cnn", run_id), encoding="utf-8", errors="replace") as f:
    job_server = f.read()
  assert "Starting Flink Mini Cluster" in job_server
  # Each Beam stage of the run (ExampleGen's too) was a Flink job that finished.
  finished = re.findall(r"Job .* switched from state RUNNING to FINISHED", job_server)
  assert len(finished) >= 4, job_server[-3000:]
  assert "Blessed: yes" in result.stdout


def test_statistics_match_the_in_process_runner(raced_runs, tmp_path):
  engine_parity.assert_statistics_match(_metadata_path(raced_runs), str(tmp_path))


def test_transformed_examples_match_the_in_process_runner(raced_runs, tmp_path):
  engine_parity.assert_transformed_examples_match(_metadata_path(raced_runs), str(tmp_path))


def test_metrics_match_the_in_process_runner(raced_runs, tmp_path):
  engine_parity.assert_metrics_match(_metadata_path(raced_runs), str(tmp_path))


def test_the_same_command_on_flink_again_is_answered_from_the_cache(raced_runs):
  e2e_helpers.assert_rerun_executed_nothing_and_pushed_nothing(
      raced_runs.again, raced_runs.output_dir, "cnn")
