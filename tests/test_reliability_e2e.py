"""Reliability end to end (CNN): on the shared run history
(tests/cnn_history.py), a run killed during training resumes from its cached
upstream results with one push, and a worse model is not shipped; two runs
started together on one output directory make one run, one push
(tests/raced_runs.py)."""
import os

import pytest
from tfx.orchestration import metadata as tfx_metadata

from pipeline import configs
from runners import preflight, run_summary
from runners.layout import OutputLayout
from tests import e2e_helpers
from tests.test_quiet_startup import NOISE

pytestmark = pytest.mark.e2e


def test_worse_model_than_blessed_baseline_is_neither_blessed_nor_pushed(cnn_history):
  good, worse, required = cnn_history.good, cnn_history.worse, cnn_history.worse_required
  assert good.returncode == 0 and "Blessed: yes" in good.stdout, good.stdout + good.stderr
  # No baseline yet: the summary lists the change threshold as not applied.
  assert "NOT APPLIED  sparse_categorical_accuracy on Overall: change vs baseline" in good.stdout
  serving_dir = e2e_helpers.serving_dir(cnn_history.output_dir, "cnn")
  (version,) = e2e_helpers.pushed_versions(serving_dir)
  assert f"Pushed: {os.path.join(serving_dir, version)}\n" in good.stdout
  # One training step: far worse than the baseline. The absolute floor is 0
  # so only the comparison with the blessed baseline can refuse it.
  assert worse.returncode == 0, worse.stdout + worse.stderr
  assert "Blessed: NO" in worse.stdout
  assert "change vs baseline" in worse.stdout
  assert "Pushed: nothing (model not blessed)" in worse.stdout
  # CI asks for a blessed model: the same (cached) run then fails with its own status.
  assert required.returncode == preflight.EXIT_NOT_BLESSED, required.stdout + required.stderr
  assert "NOT BLESSED: --require-blessing was given" in required.stderr
  assert e2e_helpers.pushed_versions(serving_dir) == [version]


def test_run_killed_during_training_resumes_with_one_new_version(cnn_history):
  """On the shared history: its good run was killed during training, then
  started again."""
  assert "-> Trainer started" in cnn_history.killed_stdout
  assert cnn_history.pushed_after_kill == []
  resumed = cnn_history.good
  assert resumed.returncode == 0, resumed.stdout + resumed.stderr
  states = e2e_helpers.component_states(resumed.stdout)
  for upstream in ("TFRecordExampleGen", "StatisticsGen", "Transform"):
    assert states[upstream] == "cached", states
  assert states["Trainer"] == "executed" and states["Pusher"] == "executed"
  serving_dir = e2e_helpers.serving_dir(cnn_history.output_dir, "cnn")
  versions = e2e_helpers.pushed_versions(serving_dir)
  assert len(versions) == 1
  assert os.path.isfile(os.path.join(serving_dir, versions[0], "saved_model.pb"))
  assert not [n for n in os.listdir(serving_dir) if not n.isdigit()]


def test_two_runs_started_together_on_one_output_dir_make_one_run_and_one_push(raced_runs):
  """On the shared race (tests/raced_runs.py), whose winner also proves the
  Beam stages on Flink (tests/test_flink_e2e.py)."""
  output_dir, winner, refused = raced_runs.output_dir, raced_runs.winner, raced_runs.refused
  assert raced_runs.refused_while_winner_ran, "the refused run must not wait for the other"
  assert refused.returncode == preflight.EXIT_OUTPUT_LOCKED, refused.stdout + refused.stderr
  assert refused.stdout == ""
  assert refused.stderr.startswith(f"error: another run is using {output_dir}: "
                                   f"pid {raced_runs.winner_pid} on "), refused.stderr
  assert winner.returncode == 0, winner.stdout + winner.stderr
  e2e_helpers.assert_single_blessed_push(output_dir, "cnn", winner.stdout)
  for output in (refused.stdout, refused.stderr, winner.stdout, winner.stderr):
    assert not [n for n in NOISE if n in output], output
  # One run, one log named after its run id (and its Flink job server's);
  # the summary read that run only. (The winner's command ran again after
  # the race: its logs are there too, under its own run id.)
  run_id, again_id = (e2e_helpers.run_id_of(run.stdout) for run in (winner, raced_runs.again))
  layout = OutputLayout(output_dir)
  assert sorted(os.listdir(layout.logs_dir)) == sorted(
      os.path.basename(path) for run in (run_id, again_id)
      for path in (layout.log_path("cnn", run), layout.job_server_log_path("cnn", run)))
  connection = tfx_metadata.sqlite_metadata_connection_config(
      OutputLayout(output_dir).metadata_path)
  node_ids = ["TFRecordExampleGen", "Trainer", "Pusher"]
  this_run = run_summary.read_node_runs(connection, configs.CNN.pipeline_name, node_ids, run_id)
  assert {n: r.state for n, r in this_run.items()} == dict.fromkeys(node_ids, "executed")
  other_run = run_summary.read_node_runs(connection, configs.CNN.pipeline_name, node_ids,
                                         "20000101-000000-00000000")
  assert {r.state for r in other_run.values()} == {"not run"}
