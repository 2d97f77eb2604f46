"""The local spec executor's rules, on the committed goldens (no task runs here;
tests/test_kubeflow_local_e2e.py runs a whole spec)."""
import io
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


_TASK_CODE = """
import json, os, sys
executor_input = json.loads(sys.argv[1])
source = executor_input["inputs"]["artifacts"]["raw"]["artifacts"][0]
target = executor_input["outputs"]["artifacts"]["copied"]["artifacts"][0]
if executor_input["inputs"]["parameterValues"]["fail"]:
  sys.exit("told to fail")
with open(os.path.join(target["uri"], "copy.txt"), "w") as f:
  f.write(source["uri"])
os.makedirs(os.path.dirname(executor_input["outputs"]["outputFile"]), exist_ok=True)
with open(executor_input["outputs"]["outputFile"], "w") as f:
  json.dump({"artifacts": {"copied": {"artifacts": [
      {"uri": target["uri"], "metadata": {"source": source["uri"]}}]}}}, f)
"""


def _tiny_spec(fail: bool):
  """An importer task feeding a container task, feeding a last one."""
  dataset = {"schemaTitle": "system.Dataset"}

  def consumer(after):
    return {"cachingOptions": {"enableCache": True}, "componentRef": {"name": "copy"},
            "dependentTasks": [after], "taskInfo": {"name": "copy"},
            "inputs": {"artifacts": {"raw": {"taskOutputArtifact": {
                "producerTask": after,
                "outputArtifactKey": "artifact" if after == "importer" else "copied"}}},
                       "parameters": {"fail": {"runtimeValue": {"constant": fail}}}}}
  return {
      "components": {
          "importer": {"executorLabel": "importer_executor", "outputDefinitions": {
              "artifacts": {"artifact": {"artifactType": dataset}}}},
          "copy": {"executorLabel": "copy_executor",
                   "inputDefinitions": {"artifacts": {"raw": {"artifactType": dataset}}},
                   "outputDefinitions": {"artifacts": {"copied": {"artifactType": dataset}}}},
      },
      "deploymentSpec": {"executors": {
          "importer_executor": {"importer": {"artifactUri": {"constant": "/data/raw.csv"},
                                             "typeSchema": dataset}},
          "copy_executor": {"container": {"image": "python:3.10",
                                          "command": ["python", "-c", _TASK_CODE],
                                          "args": ["{{$}}"]}}}},
      "root": {"dag": {"tasks": {
          "importer": {"componentRef": {"name": "importer"}, "taskInfo": {"name": "importer"}},
          "first": consumer("importer"), "second": consumer("first")}}},
      "defaultPipelineRoot": "/unused",
  }


def test_importer_output_reaches_the_container_and_its_output_metadata_comes_back(tmp_path):
  executor = spec_executor.SpecExecutor(_tiny_spec(fail=False), str(tmp_path),
                                        stream=io.StringIO())
  runs = executor.run()
  assert [r.state for r in runs.values()] == ["imported", "executed", "executed"]
  first = runs["first"].outputs["copied"]
  assert first["uri"] == str(tmp_path / executor.run_id / "first" / "copied")
  assert first["metadata"] == {"source": "/data/raw.csv"}
  assert runs["second"].outputs["copied"]["metadata"] == {"source": first["uri"]}
  # The same inputs again: both container tasks come from the cache.
  again = spec_executor.SpecExecutor(_tiny_spec(fail=False), str(tmp_path),
                                     stream=io.StringIO()).run()
  assert [r.state for r in again.values()] == ["imported", "cached", "cached"]
  assert again["second"].outputs == runs["second"].outputs


def test_a_failed_task_starts_nothing_after_it(tmp_path):
  runs = spec_executor.SpecExecutor(_tiny_spec(fail=True), str(tmp_path),
                                    stream=io.StringIO()).run()
  assert [r.state for r in runs.values()] == ["imported", "failed", "not run"]
  assert "told to fail" in spec_executor.failure_log_tail(runs["first"])


_WAIT_FOR_PEER = """
import json, os, sys, time
executor_input = json.loads(sys.argv[1])
me, peer = executor_input["inputs"]["parameterValues"]["me"], \\
    executor_input["inputs"]["parameterValues"]["peer"]
open(os.path.join(sys.argv[2], me), "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(os.path.join(sys.argv[2], peer)):
  if time.monotonic() > deadline:
    sys.exit(f"{peer} never started while {me} ran")
  time.sleep(0.05)
"""


def _two_independent_tasks(rendezvous: str):
  """Two tasks with no edge between them; each waits for the other to start."""
  def task(me, peer):
    return {"componentRef": {"name": "wait"}, "taskInfo": {"name": me},
            "inputs": {"parameters": {"me": {"runtimeValue": {"constant": me}},
                                      "peer": {"runtimeValue": {"constant": peer}}}}}
  return {
      "components": {"wait": {"executorLabel": "wait_executor"}},
      "deploymentSpec": {"executors": {"wait_executor": {"container": {
          "image": "python:3.10", "command": ["python", "-c", _WAIT_FOR_PEER],
          "args": ["{{$}}", rendezvous]}}}},
      "root": {"dag": {"tasks": {"left": task("left", "right"),
                                 "right": task("right", "left")}}},
      "defaultPipelineRoot": "/unused",
  }


def test_ready_tasks_run_side_by_side_as_argo_runs_them(tmp_path):
  rendezvous = tmp_path / "rendezvous"
  rendezvous.mkdir()
  runs = spec_executor.SpecExecutor(_two_independent_tasks(str(rendezvous)),
                                    str(tmp_path / "root"), stream=io.StringIO(),
                                    max_parallel=2).run()
  assert {name: run.state for name, run in runs.items()} == {"left": "executed",
                                                             "right": "executed"}


def test_max_parallel_below_one_is_refused():
  with pytest.raises(ValueError, match="max_parallel must be at least 1, got 0"):
    spec_executor.SpecExecutor(_tiny_spec(fail=False), "/unused", max_parallel=0)


def _module_task_spec(output: str):
  """One `python -m` task (tests/forkserver_task.py), as every compiled task is."""
  return {
      "components": {"probe": {"executorLabel": "probe_executor"}},
      "deploymentSpec": {"executors": {"probe_executor": {"container": {
          "image": "python:3.10", "command": ["python", "-m", "tests.forkserver_task"],
          "args": [output, "0"]}}}},
      "root": {"dag": {"tasks": {"probe": {"componentRef": {"name": "probe"},
                                           "taskInfo": {"name": "probe"}}}}},
      "defaultPipelineRoot": "/unused",
  }


@pytest.mark.parametrize("fresh_processes", [False, True])
def test_module_tasks_fork_from_a_preloaded_interpreter_unless_told_fresh(tmp_path,
                                                                          fresh_processes):
  output = tmp_path / "probe.json"
  executor = spec_executor.SpecExecutor(_module_task_spec(str(output)), str(tmp_path / "root"),
                                        stream=io.StringIO(), fresh_processes=fresh_processes)
  runs = executor.run()
  assert runs["probe"].state == "executed"
  with open(output, encoding="utf-8") as f:
    task = json.load(f)
  assert task["preloaded"] is not fresh_processes
  assert (task["ppid"] == os.getpid()) is fresh_processes
  logs = os.listdir(os.path.join(str(tmp_path / "root"), spec_executor.LOGS_DIR, executor.run_id))
  server_log = spec_executor.FORK_SERVER_LOG.format(module="tests.forkserver_task")
  assert (server_log in logs) is not fresh_processes


_DOUBLE = """
import json, sys
executor_input = json.loads(sys.argv[1])
with open(sys.argv[2], "w") as f:
  f.write(str(2 * executor_input["inputs"]["parameterValues"]["n"]))
"""
_ECHO = """
import json, sys
print(json.loads(sys.argv[1])["inputs"]["parameterValues"])
"""


def _parameter_spec(cached: bool):
  """A run parameter `n` feeding a task that writes 2n as its output
  parameter, which a second task takes as its own `n`."""
  integer = {"parameterType": "NUMBER_INTEGER"}
  return {
      "components": {
          "double": {"executorLabel": "double_executor",
                     "inputDefinitions": {"parameters": {"n": integer}},
                     "outputDefinitions": {"parameters": {"doubled": integer}}},
          "echo": {"executorLabel": "echo_executor",
                   "inputDefinitions": {"parameters": {"n": integer}}},
      },
      "deploymentSpec": {"executors": {
          "double_executor": {"container": {
              "image": "python:3.10", "command": ["python", "-c", _DOUBLE],
              "args": ["{{$}}", "{{$.outputs.parameters['doubled'].output_file}}"]}},
          "echo_executor": {"container": {"image": "python:3.10",
                                          "command": ["python", "-c", _ECHO],
                                          "args": ["{{$}}"]}}}},
      "root": {
          "inputDefinitions": {"parameters": {"n": dict(integer, defaultValue=1,
                                                          isOptional=True)}},
          "dag": {"tasks": {
              "double": {"componentRef": {"name": "double"}, "taskInfo": {"name": "double"},
                         "cachingOptions": {"enableCache": cached},
                         "inputs": {"parameters": {"n": {"componentInputParameter": "n"}}}},
              "echo": {"componentRef": {"name": "echo"}, "taskInfo": {"name": "echo"},
                       "cachingOptions": {"enableCache": True},
                       "inputs": {"parameters": {"n": {"taskOutputParameter": {
                           "producerTask": "double", "outputParameterKey": "doubled"}}}}}}}},
      "defaultPipelineRoot": "/unused",
  }


def test_run_parameters_and_task_output_parameters_reach_tasks_by_value(tmp_path):
  """KFP's driver hands a task the run's parameter values (else the
  pipeline's defaults) and upstream output parameters, and keys the cache
  on those values: the same value again is a cache hit, another a miss."""
  def run(cached, **values):
    return spec_executor.SpecExecutor(_parameter_spec(cached), str(tmp_path),
                                      stream=io.StringIO(), parameter_values=values).run()
  first = run(False)
  assert first["double"].parameters == {"doubled": 2}
  assert "{'n': 2}" in open(first["echo"].log_path).read()
  again = run(False)
  assert [again["double"].state, again["echo"].state] == ["executed", "cached"]
  assert again["echo"].parameters == {}
  other = run(False, n=5)
  assert [other["double"].state, other["echo"].state] == ["executed", "executed"]
  assert "{'n': 10}" in open(other["echo"].log_path).read()
  # A cached producer hands its recorded output parameters on.
  assert run(True, n=7)["double"].state == "executed"
  cached = run(True, n=7)
  assert cached["double"].state == "cached" and cached["double"].parameters == {"doubled": 14}
  with pytest.raises(spec_executor.SpecError, match="the pipeline has no parameter m "
                     r"\(its parameters: n\)"):
    run(False, m=1)
