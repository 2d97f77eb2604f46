"""The local spec executor's rules, on the committed goldens (no task runs here;
tests/test_kubeflow_local_e2e.py runs a whole spec)."""
import json
import os

import pytest

from runners import spec_executor

GOLDEN_DIR = os.path.join(spec_executor.REPO_ROOT, "tests", "golden", "kubeflow")


def _golden(target, family="cnn"):
  return spec_executor.load_spec(os.path.join(GOLDEN_DIR, target, f"{family}.yaml"))


def test_resolver_executors_are_refused_as_open_source_kfp_refuses_them():
  with pytest.raises(spec_executor.SpecError,
                     match=r"baseline_resolver-model-blessing-resolver_executor, "
                     r"baseline_resolver-model-resolver_executor are neither container"):
    spec_executor.SpecExecutor(_golden("vertex"), pipeline_root="/unused")


def test_object_store_roots_are_refused_naming_the_root():
  with pytest.raises(spec_executor.SpecError, match="gs://kfp-bucket/artifacts"):
    spec_executor.SpecExecutor(_golden("kfp"))


@pytest.mark.parametrize("family", ["cnn", "lstm", "two_tower"])
def test_tasks_run_after_every_task_they_depend_on(family):
  spec = _golden("kfp", family)
  order = spec_executor.task_order(spec)
  tasks = spec["root"]["dag"]["tasks"]
  assert sorted(order) == sorted(tasks)
  for name, task in tasks.items():
    producers = {a["taskOutputArtifact"]["producerTask"]
                 for a in task.get("inputs", {}).get("artifacts", {}).values()}
    for upstream in producers | set(task.get("dependentTasks", [])):
      assert order.index(upstream) < order.index(name), (upstream, name)
  assert order.index("AnomaliesGate") < order.index("Transform")


def test_placeholders_become_the_executor_input_and_its_values():
  executor_input = {
      "inputs": {"parameterValues": {"serving_dir": "/s/cnn", "steps": 3},
                 "artifacts": {"model": {"artifacts": [{"uri": "/r/Trainer/model"}]}}},
      "outputs": {"artifacts": {"blessing": {"artifacts": [{"uri": "/r/Evaluator/blessing"}]}}},
  }
  serialized = json.dumps(executor_input)
  substitute = spec_executor._substitute  # pylint: disable=protected-access
  assert substitute("{{$}}", executor_input, serialized) == serialized
  assert substitute("--dir={{$.inputs.parameters['serving_dir']}}", executor_input,
                    serialized) == "--dir=/s/cnn"
  assert substitute("{{$.inputs.parameters['steps']}}", executor_input, serialized) == "3"
  assert substitute("{{$.inputs.artifacts['model'].uri}}", executor_input,
                    serialized) == "/r/Trainer/model"
  assert substitute("{{$.outputs.artifacts['blessing'].uri}}", executor_input,
                    serialized) == "/r/Evaluator/blessing"
  with pytest.raises(spec_executor.SpecError, match="not supported"):
    substitute("{{$.pipeline_job_name}}", executor_input, serialized)
