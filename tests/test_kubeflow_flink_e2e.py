"""End to end: the CNN's Kubeflow spec compiled with `--beam-preset flink
--flink-master HOST:PORT`, executed task by task as open-source KFP runs it
(runners/kubeflow_local.py), against a Flink session cluster started here
(tests/flink_cluster.py: a JobManager whose REST endpoint is HOST:PORT, a
TaskManager, each in its own JVM, and beside them the Beam worker pool the
pipeline image runs as each TaskManager's sidecar). Every Beam task starts
Beam's Flink job server from the fetched jars, as the image's entrypoint does
(components/kfp_entrypoint.py), submits its pipelines to the cluster through
that REST endpoint, and the TaskManager runs their Python transforms on the
worker pool (EXTERNAL); the other tasks start no job server. On 200 train /
100 eval digits and a 20-step model blessed by a floor of 0: what is under
test is where the Beam stages run, not the model. (tests/test_flink_e2e.py
holds a local Flink run's outputs to the in-process runner's.)"""
import glob
import os

import pytest

from components.tflite_exporter import layout as tflite_layout
from pipeline import configs
from runners import spec_executor
from runners.layout import OutputLayout
from tests import e2e_helpers, local_runs
from tests.flink_cluster import flink_session_cluster

pytestmark = pytest.mark.e2e
MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
BEAM_TASKS = ("TFRecordExampleGen", "StatisticsGen", "Transform", "Evaluator")
# What the job server a Beam task starts logs once it listens.
JOB_SERVER_STARTED = "JobServerDriver - JobService started on"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
  with flink_session_cluster(str(tmp_path_factory.mktemp("flink-cluster"))) as started:
    yield started


@pytest.fixture(scope="module")
def spec_run(cluster, tmp_path_factory):
  data_dir = e2e_helpers.write_small_slice(
      MNIST, str(tmp_path_factory.mktemp("digits") / "span-1"), 200, 100)
  output_dir = str(tmp_path_factory.mktemp("kubeflow-flink"))
  result = local_runs.run(
      ["--model", "cnn", "--data-dir", os.path.dirname(data_dir), "--output-dir", output_dir,
       "--train-steps", "20", "--min-metric", "0", "--beam-preset", "flink",
       "--flink-master", cluster.rest_address,
       f"--beam-arg=--environment_config={cluster.worker_pool}"],
      timeout=1500, entry_point=local_runs.KUBEFLOW_LOCAL)
  return output_dir, result


def _task_logs(output_dir):
  """{task: its log} of the run."""
  logs = {}
  root = OutputLayout(output_dir).pipeline_root
  for path in glob.glob(os.path.join(root, spec_executor.LOGS_DIR, "*", "*.log")):
    with open(path, encoding="utf-8", errors="replace") as f:
      logs[os.path.basename(path)[:-len(".log")]] = f.read()
  return logs


def test_spec_run_on_the_flink_cluster_pushes_a_blessed_model(spec_run):
  output_dir, result = spec_run
  assert result.returncode == 0, result.stdout + result.stderr
  assert "Blessed: yes" in result.stdout
  layout = OutputLayout(output_dir)
  versions = e2e_helpers.pushed_versions(layout.serving_dir("cnn"))
  assert len(versions) == 1
  assert tflite_layout.published_versions(layout.tflite_dir("cnn")) == [int(versions[0])]


def test_beam_tasks_submit_their_pipelines_to_the_cluster_through_their_own_job_server(
    cluster, spec_run):
  output_dir, result = spec_run
  states = e2e_helpers.component_states(result.stdout)
  logs = _task_logs(output_dir)
  for task in BEAM_TASKS:
    assert states[task] == "executed", states
    log = logs[task]
    assert JOB_SERVER_STARTED in log, task
    assert f"to 'http://{cluster.rest_address}'" in log, task  # "Successfully submitted job ..."
  # A task that runs no Beam pipeline starts no job server.
  assert JOB_SERVER_STARTED not in logs["Trainer"]
  jobs = cluster.jobs()
  assert len(jobs) >= len(BEAM_TASKS)
  assert {job["state"] for job in jobs} == {"FINISHED"}, jobs


def test_the_spec_names_the_cluster_and_the_worker_pool_not_a_local_engine(cluster, spec_run):
  output_dir, _ = spec_run
  (spec_path,) = glob.glob(os.path.join(output_dir, "spec", "cnn.yaml"))
  with open(spec_path, encoding="utf-8") as f:
    spec = f.read()
  assert "--runner=FlinkRunner" in spec and f"--flink_master={cluster.rest_address}" in spec
  assert "--environment_type=EXTERNAL" in spec
  assert f"--environment_config={cluster.worker_pool}" in spec
