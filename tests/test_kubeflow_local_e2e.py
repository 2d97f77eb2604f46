"""End to end: the CNN's compiled Kubeflow spec (target kfp) executed task by
task as open-source KFP runs it (runners/kubeflow_local.py, ready tasks side
by side), on a small slice of the shipped digits (300 train / 100 eval, a
20-step model): a blessed push to serving and TFLite with
artifacts handed over as the open-source launcher types them (system.*), a
re-run with the declared types (as Vertex AI hands them) that takes the
served model as its baseline and pushes nothing, and bad data stopping every
task after the gate. Each run is forked from the tests' fork server
(tests/local_runs.py) and forks its tasks from its own
(runners/task_forkserver.py); tests/test_kfp_entrypoint.py starts a task in
a new interpreter, as its container does, and tests/test_quiet_startup.py
the runner."""
import glob
import json
import os
import re

import pytest

from components import atomic_pusher
from components.eval_report import results
from components.tflite_exporter import layout as tflite_layout
from pipeline import configs
from runners import spec_executor
from runners.layout import OutputLayout
from tests import e2e_helpers, local_runs

pytestmark = pytest.mark.e2e
MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
# What is under test is the orchestration, not the model: 20 steps, and an
# absolute floor of 0 so the first run blesses (the rerun still needs the
# change threshold against the served model to pass).
RUN_ARGS = ["--model", "cnn", "--train-steps", "20", "--min-metric", "0"]
N_TRAIN, N_EVAL = 300, 100


def _run(data_dir, output_dir, *extra_args):
  return local_runs.run([*RUN_ARGS, "--data-dir", data_dir, "--output-dir", output_dir,
                         *extra_args], timeout=1500, entry_point=local_runs.KUBEFLOW_LOCAL)


def _evaluations(output_dir):
  """Evaluator outputs of every run, oldest first (run ids start with the time)."""
  return sorted(glob.glob(os.path.join(OutputLayout(output_dir).pipeline_root, "*",
                                       "Evaluator", "evaluation")))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
  data_dir = e2e_helpers.write_small_slice(MNIST, str(tmp_path_factory.mktemp("data")),
                                           N_TRAIN, N_EVAL)
  output_dir = str(tmp_path_factory.mktemp("kubeflow-local"))
  result = _run(data_dir, output_dir)
  assert result.returncode == 0, result.stdout + result.stderr
  return data_dir, output_dir, result


def test_spec_run_pushes_a_blessed_savedmodel_and_its_tflite_version(first_run):
  _, output_dir, result = first_run
  layout = OutputLayout(output_dir)
  assert "Blessed: yes" in result.stdout
  versions = e2e_helpers.pushed_versions(layout.serving_dir("cnn"))
  assert len(versions) == 1, versions
  served = os.path.join(layout.serving_dir("cnn"), versions[0])
  assert f"Pushed: {served}" in result.stdout
  assert os.path.isfile(os.path.join(served, "saved_model.pb"))
  _, record = atomic_pusher.served_record(layout.serving_dir("cnn"))
  assert record["model_uri"].startswith(layout.pipeline_root) and record["blessing_uri"]
  assert tflite_layout.published_versions(layout.tflite_dir("cnn")) == [int(versions[0])]
  assert os.path.isfile(os.path.join(layout.tflite_dir("cnn"), versions[0], "model.tflite"))
  # The first evaluation had nothing served to compare with.
  (evaluation,) = _evaluations(output_dir)
  assert not results.load_evaluation(evaluation).has_baseline


def test_spec_run_writes_the_report_as_the_artifacts_the_kfp_ui_renders(first_run):
  _, output_dir, result = first_run
  root = OutputLayout(output_dir).pipeline_root
  (html,) = glob.glob(os.path.join(root, "*", "KubeflowUiArtifacts", "html"))
  assert f"UI artifacts: {html} (system.HTML)" in result.stdout
  with open(html, encoding="utf-8") as f:
    page = f.read()
  (report,) = glob.glob(os.path.join(root, "*", "EvalReport", "report", "report.html"))
  with open(report, encoding="utf-8") as f:
    assert page == f.read()
  (written,) = glob.glob(os.path.join(root, "*", spec_executor.LAUNCHER_DIR,
                                      "KubeflowUiArtifacts", "output_metadata.json"))
  with open(written, encoding="utf-8") as f:
    metrics = json.load(f)["artifacts"]["metrics"]["artifacts"][0]["metadata"]
  evaluation = results.load_evaluation(_evaluations(output_dir)[0])
  accuracy = evaluation.overall.metric("sparse_categorical_accuracy").candidate
  assert metrics["sparse_categorical_accuracy"] == pytest.approx(accuracy)
  assert metrics["blessed"] == 1


def _run_id(stdout):
  return re.search(r"\(run (\S+)\)", stdout).group(1)


def _fork_server_logs(output_dir, run_id):
  return glob.glob(os.path.join(OutputLayout(output_dir).pipeline_root, spec_executor.LOGS_DIR,
                                run_id, spec_executor.FORK_SERVER_LOG.format(module="*")))


def test_beam_tasks_build_no_worker_package_for_their_in_process_runner(first_run):
  _, output_dir, result = first_run
  run_id = _run_id(result.stdout)
  assert _fork_server_logs(output_dir, run_id)  # Its tasks were forked from one.
  transform_log = os.path.join(OutputLayout(output_dir).pipeline_root, spec_executor.LOGS_DIR,
                               run_id, "Transform.log")
  with open(transform_log, encoding="utf-8") as f:
    log = f.read()
  assert "Transform" in log and "Attempting to infer TFX Python dependency" not in log
  assert "Running pipeline with PrismRunner" not in log


def test_rerun_is_judged_against_the_served_model_and_pushes_nothing(first_run):
  data_dir, output_dir, _ = first_run
  serving_dir = OutputLayout(output_dir).serving_dir("cnn")
  before = e2e_helpers.pushed_versions(serving_dir)
  result = _run(data_dir, output_dir, "--artifact-types", "spec")
  assert result.returncode == 0, result.stdout + result.stderr
  states = e2e_helpers.component_states(result.stdout)
  assert states["Trainer"] == "cached" and states["served_baseline"] == "executed"
  assert f"Pushed: nothing (already served as version {before[0]})" in result.stdout
  assert "TFLite: nothing (model not pushed)" in result.stdout
  assert e2e_helpers.pushed_versions(serving_dir) == before
  latest = results.load_evaluation(_evaluations(output_dir)[-1])
  assert latest.has_baseline
  assert any(check.kind == "change" and check.passed for check in latest.thresholds)


def test_bad_data_fails_the_gate_task_and_starts_nothing_after_it(first_run, tmp_path):
  _, output_dir, _ = first_run

  def corrupt_pixels(example, index):
    if index % 10 == 0:
      example.features.feature["image"].int64_list.value[0] = 4096

  bad_data = e2e_helpers.write_small_slice(MNIST, str(tmp_path / "bad"), N_TRAIN, N_EVAL,
                                           corrupt_pixels)
  serving_dir = OutputLayout(output_dir).serving_dir("cnn")
  before = e2e_helpers.pushed_versions(serving_dir)
  result = _run(bad_data, output_dir)
  assert result.returncode == 3, result.stdout + result.stderr
  assert "FAILED: task AnomaliesGate" in result.stderr and "feature 'image'" in result.stderr
  states = e2e_helpers.component_states(result.stdout)
  assert states["AnomaliesGate"] == "failed"
  assert not {"Transform", "Trainer", "Evaluator", "Pusher"} & set(states)
  assert e2e_helpers.pushed_versions(serving_dir) == before
