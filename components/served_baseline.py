"""The Evaluator's baseline where no TFX resolver can run: the served model.

Open-source Kubeflow Pipelines 2.x runs only container and importer
executors, so a pipeline for it cannot ask MLMD for the latest blessed model
(a TFX resolver). What is being served is written down anyway: AtomicPusher
publishes each version with a push record (components/atomic_pusher.py).

- `ServedBaseline`, a container component, copies the newest complete
  version under the serving directory into its Model artifact (as the
  Trainer lays a model out, so TFMA loads it the same way) and records which
  version it is. With nothing pushed yet it emits an empty artifact with
  `found` = 0.
- `ServedBaselineEvaluator` is TFX's Evaluator whose executor drops such an
  empty baseline: TFMA then evaluates the candidate alone and TFX removes the
  change thresholds, as it does when a resolver finds no baseline.

The gate therefore compares every candidate after the first with what is
served, and a re-run of an already pushed model is evaluated against itself,
blessed, and not pushed again (AtomicPusher sees it is already served).
"""
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import io_utils, path_utils

from components import push_records, uris

FOUND_KEY = "found"
SERVED_VERSION_KEY = "served_version"
SOURCE_MODEL_URI_KEY = "source_model_uri"


def emit_served_version(serving_dir: str, version: int, model: types.Artifact) -> None:
  """Copies pushed `version` under `serving_dir` into `model` as the Trainer
  lays a model out (so TFMA and the Trainer's base_model load it as they
  load a trained one), recording which version it is."""
  io_utils.copy_dir(uris.join(serving_dir, str(version)),
                    path_utils.serving_model_dir(model.uri))
  model.set_int_custom_property(FOUND_KEY, 1)
  model.set_string_custom_property(SERVED_VERSION_KEY, str(version))


@component
def ServedBaseline(  # pylint: disable=invalid-name
    serving_dir: Parameter[str],
    baseline: OutputArtifact[standard_artifacts.Model]) -> None:
  """Emits the newest completely pushed version under `serving_dir` as a Model."""
  version, record = push_records.served_record(serving_dir)
  if version is None:
    logging.info("No complete version under %s: no baseline", serving_dir)
    baseline.set_int_custom_property(FOUND_KEY, 0)
    return
  emit_served_version(serving_dir, version, baseline)
  logging.info("Baseline: version %s under %s (model %s)", version, serving_dir,
               record.get("model_uri"))
  baseline.set_string_custom_property(SOURCE_MODEL_URI_KEY, record.get("model_uri", ""))


class ServedBaselineEvaluatorExecutor(evaluator_executor.Executor):
  """TFX's Evaluator executor, without a baseline that ServedBaseline did not find."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    key = standard_component_specs.BASELINE_MODEL_KEY
    found = [b for b in input_dict.get(key, []) if b.get_int_custom_property(FOUND_KEY) == 1]
    inputs = {k: v for k, v in input_dict.items() if k != key}
    if found:
      inputs[key] = found
    super().Do(inputs, output_dict, exec_properties)


class ServedBaselineEvaluator(evaluator_component.Evaluator):
  """TFX's Evaluator, taking its baseline from ServedBaseline."""
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ServedBaselineEvaluatorExecutor)
