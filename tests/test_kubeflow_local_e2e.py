"""End to end: the CNN's compiled Kubeflow spec (target kfp) executed task by
task as open-source KFP runs it (runners/kubeflow_local.py, ready tasks side
by side), on a small slice of the shipped digits (300 train / 100 eval, a
20-step model) laid out as span 1: a blessed push to serving and TFLite with
artifacts handed over as the open-source launcher types them (system.*), a
re-run with the declared types (as Vertex AI hands them) that takes the
served model as its baseline and pushes nothing, and bad data stopping every
task after the gate. Then the next day's span 2 (a cache miss for its
ExampleGen, though its parameters are the same: the span resolution hands it
the new span) is drift-checked against what the served model learnt,
warm-started from it and judged against it, with the spec compiled with
`--beam-preset flink --flink-master HOST:PORT` against a Flink session
cluster started here (tests/flink_cluster.py: a JobManager whose REST
endpoint is HOST:PORT and a TaskManager, each in its own JVM, and beside them
the Beam worker pool the pipeline image runs as each TaskManager's sidecar):
every Beam task starts Beam's Flink job server from the fetched jars, as the
image's entrypoint does (components/kfp_entrypoint.py), and submits its
pipelines through that REST endpoint; the TaskManager runs their Python
transforms on the worker pool (EXTERNAL); the other tasks start no job
server. (tests/test_flink_e2e.py holds a local Flink run's outputs to the
in-process runner's.) Each run is forked from the tests' fork server
(tests/local_runs.py) and forks its tasks from its own
(runners/task_forkserver.py); tests/test_kfp_entrypoint.py starts a task in
a new interpreter, as its container does, and tests/test_quiet_startup.py
the runner."""
import dataclasses
import glob
import json
import os
import re
import subprocess
from typing import Dict, List

import pytest

from components import atomic_pusher, push_records
from components.eval_report import results
from components.tflite_exporter import layout as tflite_layout
from pipeline import configs
from runners import spec_executor
from runners.layout import OutputLayout
from tests import e2e_helpers, local_runs
from tests.flink_cluster import FlinkCluster, flink_session_cluster

pytestmark = pytest.mark.e2e
MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
# What is under test is the orchestration, not the model: 20 steps, and an
# absolute floor of 0 so the first run blesses (the rerun still needs the
# change threshold against the served model to pass).
RUN_ARGS = ["--model", "cnn", "--train-steps", "20", "--min-metric", "0"]
N_TRAIN, N_EVAL = 300, 100
BEAM_TASKS = ("TFRecordExampleGen", "StatisticsGen", "Transform", "Evaluator")
# What the job server a Beam task starts logs once it listens.
JOB_SERVER_STARTED = "JobServerDriver - JobService started on"


def _run(data_dir, output_dir, *extra_args):
  return local_runs.run([*RUN_ARGS, "--data-dir", data_dir, "--output-dir", output_dir,
                         *extra_args], timeout=1500, entry_point=local_runs.KUBEFLOW_LOCAL)


def _evaluations(output_dir):
  """Evaluator outputs of every run, oldest first (run ids start with the time)."""
  return sorted(glob.glob(os.path.join(OutputLayout(output_dir).pipeline_root, "*",
                                       "Evaluator", "evaluation")))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("data"))
  e2e_helpers.write_small_slice(MNIST, os.path.join(data_dir, "span-1"), N_TRAIN, N_EVAL)
  output_dir = str(tmp_path_factory.mktemp("kubeflow-local"))
  result = _run(data_dir, output_dir)
  assert result.returncode == 0, result.stdout + result.stderr
  return data_dir, output_dir, result


@pytest.fixture(scope="module")
def rerun(first_run):
  """The first run again, with the declared artifact types."""
  data_dir, output_dir, _ = first_run
  serving_dir = OutputLayout(output_dir).serving_dir("cnn")
  before = e2e_helpers.pushed_versions(serving_dir)
  return before, _run(data_dir, output_dir, "--artifact-types", "spec")


@dataclasses.dataclass(frozen=True)
class FlinkSpanRun:
  served_before: List[str]            # the serving versions before span 2's run
  result: subprocess.CompletedProcess
  spec: str                           # the spec it compiled and ran
  cluster: FlinkCluster               # stopped once the run ended
  jobs: List[Dict]                    # what the cluster's REST API listed after the run


@pytest.fixture(scope="module")
def second_span(rerun, first_run, tmp_path_factory) -> FlinkSpanRun:
  """Span 2 arrives: the same command again, its Beam tasks on a Flink cluster."""
  data_dir, output_dir, _ = first_run
  served_before = e2e_helpers.pushed_versions(OutputLayout(output_dir).serving_dir("cnn"))
  e2e_helpers.write_small_slice(MNIST, os.path.join(data_dir, "span-2"), N_TRAIN, N_EVAL,
                                part=1)
  with flink_session_cluster(str(tmp_path_factory.mktemp("flink-cluster"))) as cluster:
    result = _run(data_dir, output_dir, "--beam-preset", "flink",
                  "--flink-master", cluster.rest_address,
                  f"--beam-arg=--environment_config={cluster.worker_pool}")
    jobs = cluster.jobs()
  with open(os.path.join(output_dir, "spec", "cnn.yaml"), encoding="utf-8") as f:
    spec = f.read()
  return FlinkSpanRun(served_before, result, spec, cluster, jobs)


def test_spec_run_pushes_a_blessed_savedmodel_and_its_tflite_version(first_run):
  _, output_dir, result = first_run
  layout = OutputLayout(output_dir)
  assert "Blessed: yes" in result.stdout
  versions = e2e_helpers.pushed_versions(layout.serving_dir("cnn"))
  assert len(versions) == 1, versions
  served = os.path.join(layout.serving_dir("cnn"), versions[0])
  assert f"Pushed: {served}" in result.stdout
  assert os.path.isfile(os.path.join(served, "saved_model.pb"))
  _, record = push_records.served_record(layout.serving_dir("cnn"))
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
  assert result.returncode == 0, result.stdout + result.stderr
  run_id = _run_id(result.stdout)
  assert _fork_server_logs(output_dir, run_id)  # Its tasks were forked from one.
  transform_log = os.path.join(OutputLayout(output_dir).pipeline_root, spec_executor.LOGS_DIR,
                               run_id, "Transform.log")
  with open(transform_log, encoding="utf-8") as f:
    log = f.read()
  assert "Transform" in log and "Attempting to infer TFX Python dependency" not in log
  assert "Running pipeline with PrismRunner" not in log


def test_rerun_is_judged_against_the_served_model_and_pushes_nothing(first_run, rerun):
  _, output_dir, _ = first_run
  serving_dir = OutputLayout(output_dir).serving_dir("cnn")
  before, result = rerun
  assert result.returncode == 0, result.stdout + result.stderr
  states = e2e_helpers.component_states(result.stdout)
  assert states["Trainer"] == "cached" and states["served_baseline"] == "executed"
  # The spans are resolved anew every run; the same span is a cache hit.
  assert states["SpanResolution"] == "executed" and states["TFRecordExampleGen"] == "cached"
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


def test_next_span_is_read_drift_checked_warm_started_and_judged_against_the_served_model(
    first_run, second_span):
  """The spec and its parameters are the same as the day before; the span
  resolution hands the ExampleGen span 2, so it is not answered from the
  cache, and the run checks, starts from and compares with the model
  served from span 1."""
  data_dir, output_dir, _ = first_run
  (served,), result = second_span.served_before, second_span.result
  assert result.returncode == 0, result.stdout + result.stderr
  assert f"on spans 1-2 of {data_dir} (eval from span 2)" in result.stdout
  states = e2e_helpers.component_states(result.stdout)
  assert states["SpanResolution"] == "executed" and states["TFRecordExampleGen"] == "executed"
  assert ("Drift: none beyond the schema's thresholds from the training data of served "
          f"version {served} (span 1)") in result.stdout
  assert f"Trained: warm, from served version {served} (trained on span 1)" in result.stdout
  latest = results.load_evaluation(_evaluations(output_dir)[-1])
  assert latest.has_baseline
  serving_dir = OutputLayout(output_dir).serving_dir("cnn")
  pushed = e2e_helpers.pushed_versions(serving_dir)
  assert pushed[0] == served and len(pushed) == 1 + ("Blessed: yes" in result.stdout)
  if len(pushed) == 2:
    _, record = push_records.served_record(serving_dir)
    assert record[atomic_pusher.SPAN_KEY] == 2 and record[atomic_pusher.WINDOW_SPANS_KEY] == [1, 2]


def _task_logs(output_dir, result):
  """{task: its log} of the run that printed `result`."""
  logs = {}
  run_dir = os.path.join(OutputLayout(output_dir).pipeline_root, spec_executor.LOGS_DIR,
                         _run_id(result.stdout))
  for path in glob.glob(os.path.join(run_dir, "*.log")):
    with open(path, encoding="utf-8", errors="replace") as f:
      logs[os.path.basename(path)[:-len(".log")]] = f.read()
  return logs


def test_next_spans_beam_tasks_submit_their_pipelines_to_the_cluster_through_their_own_job_server(
    first_run, second_span):
  _, output_dir, _ = first_run
  result, cluster = second_span.result, second_span.cluster
  assert result.returncode == 0, result.stdout + result.stderr
  states = e2e_helpers.component_states(result.stdout)
  logs = _task_logs(output_dir, result)
  for task in BEAM_TASKS:
    assert states[task] == "executed", states
    assert JOB_SERVER_STARTED in logs[task], task
    assert f"to 'http://{cluster.rest_address}'" in logs[task], task  # "Successfully submitted job ..."
  # A task that runs no Beam pipeline starts no job server.
  assert JOB_SERVER_STARTED not in logs["Trainer"]
  assert len(second_span.jobs) >= len(BEAM_TASKS)
  assert {job["state"] for job in second_span.jobs} == {"FINISHED"}, second_span.jobs


def test_next_spans_spec_names_the_cluster_and_the_worker_pool_not_a_local_engine(second_span):
  spec, cluster = second_span.spec, second_span.cluster
  assert "--runner=FlinkRunner" in spec and f"--flink_master={cluster.rest_address}" in spec
  assert "--environment_type=EXTERNAL" in spec
  assert f"--environment_config={cluster.worker_pool}" in spec
