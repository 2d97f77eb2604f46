"""What a run whose Beam stages ran on another engine (Flink, Spark) is held
to: its StatisticsGen, Transform and Evaluator are executed again on Beam's
in-process runner with the inputs their executions recorded in MLMD
(tests/in_process_rerun.py), and the statistics, the transformed examples
and the metrics must match."""
import os
import re

import pytest
from tensorflow.core.example import example_pb2
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma

from modules.common.contract import TRAINER_SPLITS
from tests import tft_testing
from tests.in_process_rerun import recorded_execution, rerun_in_process

STATISTICS_GEN = "tfx.components.statistics_gen.component.StatisticsGen"
TRANSFORM = "tfx.components.transform.component.Transform"
EVALUATOR = "tfx.components.evaluator.component.Evaluator"
# The components a run hands to the engine, and its example gen.
ENGINE_COMPONENTS = ("TFRecordExampleGen", "StatisticsGen", "Transform", "Evaluator")


def log_of(component: str, log: str) -> str:
  """What the run logged while `component` ran."""
  match = re.search(rf"Component {component} is running\.(.*?)Component {component} is "
                    r"finished\.", log, re.S)
  assert match, f"{component} did not run"
  return match.group(1)


def assert_ran_as_portable_jobs(log: str) -> None:
  """Each Beam component's pipelines went to a job server, their SDK harness
  in the run's own process."""
  for component in ("StatisticsGen", "Transform", "Evaluator"):
    ran = log_of(component, log)
    assert "portable_runner: Job state changed to DONE" in ran, component
    assert 'Environment "LOOPBACK" has started' in ran, component


def _split_statistics(artifact, split: str):
  return tfdv.load_stats_binary(os.path.join(artifact.uri, f"Split-{split}", "FeatureStats.pb"))


def assert_statistics_match(metadata_path: str, output_root: str) -> None:
  _, on_engine, _ = recorded_execution(metadata_path, STATISTICS_GEN)
  in_process = rerun_in_process(metadata_path, STATISTICS_GEN, output_root)
  for split in ("train", "eval"):
    (engine,) = _split_statistics(on_engine["statistics"][0], split).datasets
    (local,) = _split_statistics(in_process["statistics"][0], split).datasets
    assert engine.num_examples == local.num_examples > 0
    assert [f.path for f in engine.features] == [f.path for f in local.features]
    for engine_feature, local_feature in zip(engine.features, local.features):
      engine_numbers, local_numbers = engine_feature.num_stats, local_feature.num_stats
      assert engine_numbers.common_stats == local_numbers.common_stats
      for field in ("mean", "std_dev", "min", "max", "median"):
        assert getattr(engine_numbers, field) == pytest.approx(
            getattr(local_numbers, field), rel=1e-9, abs=1e-12), (engine_feature.path, field)
      assert engine_numbers.num_zeros == local_numbers.num_zeros


def _examples(uri: str, split: str):
  """A split's tf.Examples, each serialized deterministically (features in
  key order: two writers may order a proto map differently)."""
  return [example_pb2.Example.FromString(record).SerializeToString(deterministic=True)
          for record in tft_testing.read_serialized(
              os.path.join(uri, f"Split-{split}", "*.gz"), limit=-1)]


def assert_transformed_examples_match(metadata_path: str, output_root: str) -> None:
  _, on_engine, _ = recorded_execution(metadata_path, TRANSFORM)
  in_process = rerun_in_process(metadata_path, TRANSFORM, output_root)
  for split in TRAINER_SPLITS:
    engine = _examples(on_engine["transformed_examples"][0].uri, split)
    local = _examples(in_process["transformed_examples"][0].uri, split)
    assert len(engine) > 0
    assert sorted(engine) == sorted(local), split


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


def assert_metrics_match(metadata_path: str, output_root: str) -> None:
  _, on_engine, _ = recorded_execution(metadata_path, EVALUATOR)
  in_process = rerun_in_process(metadata_path, EVALUATOR, output_root)
  engine = _metrics(on_engine["evaluation"][0].uri)
  local = _metrics(in_process["evaluation"][0].uri)
  assert engine.keys() == local.keys() and len(engine) > 1  # overall and the slices
  for slice_key, metrics in engine.items():
    assert metrics.keys() == local[slice_key].keys()
    for key, value in metrics.items():
      assert value == pytest.approx(local[slice_key][key], rel=1e-6, abs=1e-9), (slice_key, key)
