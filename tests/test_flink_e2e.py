"""End to end: the Beam components on Flink. The run that won the shared race
(tests/raced_runs.py: 300 train / 100 eval digits, a 20-step model) ran with
`--beam-preset flink`: the runner started Beam's Flink job server on a Flink
MiniCluster ([local]) for the run, and StatisticsGen, Transform and
Evaluator ran on it as portable Beam jobs, the SDK harness in the run's own
process (LOOPBACK). Each of them is then executed again on Beam's
in-process runner with the same inputs (tests/in_process_rerun.py): the
statistics, the transformed examples and the metrics must match."""
import glob
import os
import re

import pytest
from tensorflow.core.example import example_pb2
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma

from modules.common.contract import TRAINER_SPLITS
from runners.layout import OutputLayout
from tests import e2e_helpers, tft_testing
from tests.in_process_rerun import recorded_execution, rerun_in_process

pytestmark = pytest.mark.e2e

STATISTICS_GEN = "tfx.components.statistics_gen.component.StatisticsGen"
TRANSFORM = "tfx.components.transform.component.Transform"
EVALUATOR = "tfx.components.evaluator.component.Evaluator"


def _log_of(component: str, log: str) -> str:
  """What the run logged while `component` ran."""
  match = re.search(rf"Component {component} is running\.(.*?)Component {component} is "
                    r"finished\.", log, re.S)
  assert match, f"{component} did not run"
  return match.group(1)


def _metadata_path(raced_runs) -> str:
  return OutputLayout(raced_runs.output_dir).metadata_path


def test_statistics_transform_and_evaluator_run_as_jobs_on_flink(raced_runs):
  result = raced_runs.winner
  assert result.returncode == 0, result.stdout + result.stderr
  states = e2e_helpers.component_states(result.stdout)
  for component in ("TFRecordExampleGen", "StatisticsGen", "Transform", "Evaluator"):
    assert states[component] == "executed", states
  layout = OutputLayout(raced_runs.output_dir)
  (log_path,) = glob.glob(os.path.join(layout.logs_dir, "cnn-*[0-9a-f].log"))
  with open(log_path, encoding="utf-8") as f:
    log = f.read()
  for component in ("StatisticsGen", "Transform", "Evaluator"):
    ran = _log_of(component, log)
    assert "portable_runner: Job state changed to DONE" in ran, component
    assert 'Environment "LOOPBACK" has started' in ran, component
  (job_server_log,) = glob.glob(os.path.join(layout.logs_dir, "cnn-*-job-server.log"))
  with open(job_server_log, encoding="utf-8", errors="replace") as f:
    job_server = f.read()
  assert "Starting Flink Mini Cluster" in job_server
  # Each Beam stage of the run (ExampleGen's too) was a Flink job that finished.
  finished = re.findall(r"Job .* switched from state RUNNING to FINISHED", job_server)
  assert len(finished) >= 4, job_server[-3000:]
  assert "Blessed: yes" in result.stdout


def _split_statistics(artifact, split: str):
  return tfdv.load_stats_binary(os.path.join(artifact.uri, f"Split-{split}", "FeatureStats.pb"))


def test_statistics_match_the_in_process_runner(raced_runs, tmp_path):
  _, on_flink, _ = recorded_execution(_metadata_path(raced_runs), STATISTICS_GEN)
  in_process = rerun_in_process(_metadata_path(raced_runs), STATISTICS_GEN, str(tmp_path))
  for split in ("train", "eval"):
    (flink,) = _split_statistics(on_flink["statistics"][0], split).datasets
    (local,) = _split_statistics(in_process["statistics"][0], split).datasets
    assert flink.num_examples == local.num_examples > 0
    assert [f.path for f in flink.features] == [f.path for f in local.features]
    for flink_feature, local_feature in zip(flink.features, local.features):
      flink_numbers, local_numbers = flink_feature.num_stats, local_feature.num_stats
      assert flink_numbers.common_stats == local_numbers.common_stats
      for field in ("mean", "std_dev", "min", "max", "median"):
        assert getattr(flink_numbers, field) == pytest.approx(
            getattr(local_numbers, field), rel=1e-9, abs=1e-12), (flink_feature.path, field)
      assert flink_numbers.num_zeros == local_numbers.num_zeros


def _examples(uri: str, split: str):
  """A split's tf.Examples, each serialized deterministically (features in
  key order: two writers may order a proto map differently)."""
  return [example_pb2.Example.FromString(record).SerializeToString(deterministic=True)
          for record in tft_testing.read_serialized(
              os.path.join(uri, f"Split-{split}", "*.gz"), limit=-1)]


def test_transformed_examples_match_the_in_process_runner(raced_runs, tmp_path):
  _, on_flink, _ = recorded_execution(_metadata_path(raced_runs), TRANSFORM)
  in_process = rerun_in_process(_metadata_path(raced_runs), TRANSFORM, str(tmp_path))
  for split in TRAINER_SPLITS:
    flink = _examples(on_flink["transformed_examples"][0].uri, split)
    local = _examples(in_process["transformed_examples"][0].uri, split)
    assert len(flink) > 0
    assert sorted(flink) == sorted(local), split


def _metrics(evaluation_uri: str):
  """{slice: {metric: point value}} of an evaluation."""
  values = {}
  for metrics_for_slice in tfma.load_metrics(evaluation_uri):
    metrics = {}
    for item in metrics_for_slice.metric_keys_and_values:
      value = item.value
      point = (value.bounded_value.value.value if value.HasField("bounded_value")
               else value.double_value.value)
      metrics[(item.key.name, item.key.model_name, item.key.is_diff)] = point
    values[str(metrics_for_slice.slice_key)] = metrics
  return values


def test_metrics_match_the_in_process_runner(raced_runs, tmp_path):
  _, on_flink, _ = recorded_execution(_metadata_path(raced_runs), EVALUATOR)
  in_process = rerun_in_process(_metadata_path(raced_runs), EVALUATOR, str(tmp_path))
  flink = _metrics(on_flink["evaluation"][0].uri)
  local = _metrics(in_process["evaluation"][0].uri)
  assert flink.keys() == local.keys() and len(flink) > 1  # overall and the slices
  for slice_key, metrics in flink.items():
    assert metrics.keys() == local[slice_key].keys()
    for key, value in metrics.items():
      assert value == pytest.approx(local[slice_key][key], rel=1e-6, abs=1e-9), (slice_key, key)
