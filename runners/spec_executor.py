"""Runs a compiled Kubeflow Pipelines v2 spec on this machine, task by task,
the way the open-source KFP v2 backend does.

What it follows in kubeflow/pipelines `backend/src/v2/`:
- compiler (`compiler/visitor.go`): only container and importer executors
  run; a resolver executor is refused before anything starts, as the
  open-source backend refuses it ("non-container and non-importer executor
  not implemented").
- driver (`driver/driver.go`): a task starts when the tasks it depends on
  (its `dependentTasks` and the producers of its input artifacts) have
  succeeded, alongside every other task that is ready then, as Argo runs a
  DAG's ready nodes together (here at most `max_parallel` at a time, the
  machine's cores by default); its ExecutorInput carries the upstream output
  artifacts (name, type, uri, metadata) as input artifacts, as
  `parameterValues` the spec's constants, the run's parameters
  (`componentInputParameter`: the values the run was given, else the
  pipeline's defaults) and upstream tasks' output parameters
  (`taskOutputParameter`), and output artifacts at
  `<pipeline root>/<run id>/<task>/<output>` (`generateOutputURI`) with the
  types the component declares; caching: with the task's
  `cachingOptions.enableCache`, a task whose fingerprint (component, command,
  input artifacts, parameters) matches an earlier successful execution is not
  run and its outputs are reused.
- launcher (`component/launcher_v2.go`): `{{$}}` in the container's command
  and args becomes the ExecutorInput JSON and `{{$.inputs.parameters['x']}}`
  / artifact `uri` placeholders their values, `{{$.outputs.parameters['x']
  .output_file}}` a file whose content, once the task succeeded, is its
  output parameter `x` (typed as declared); the command runs in the image
  (here: the checkout, which the Dockerfile copies to /pipeline, with
  PYTHONPATH and the working directory set as the image sets them); the
  ExecutorOutput it writes to `outputs.outputFile` updates the output
  artifacts' metadata.
- importer (`driver.go` importer branch): the artifact at `artifactUri` is
  registered with the given type and metadata; nothing is copied.
- artifact types: the open-source launcher hands artifacts typed `system.*`
  (`system.Model`, `system.Dataset`, else `system.Artifact`), not as the
  spec declares them (kubeflow/pipelines#13476); `artifact_types="oss"`
  (the default) does the same, `"spec"` hands the declared types as Vertex
  AI does.
A failed task fails the run: tasks not yet started are not started; those
already running finish.

Each task prints a line when it starts and one when it ends (seconds,
executed, cached or failed), like the local runner.

A task's container command runs as its own process either way: by default
a `python -m MODULE` command is forked from an interpreter that has already
imported the module's runtime (runners/task_forkserver.py: TensorFlow, Beam
and TFX once per spec run, not 8-12 s per task); `fresh_processes=True`
starts each in a new interpreter, exactly as the image does.
"""
import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Set, TextIO

import yaml

from components import uris
from runners import task_forkserver
from runners.layout import new_run_id

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The launcher's own files (outputs metadata, logs, the cache index) go under
# a local state directory: the pipeline root when that is local.
LAUNCHER_DIR = ".launcher"
# Each entry holds a task's output artifacts and parameters (v2: with
# output parameters; the entries of v1, artifacts only, are not read).
CACHE_DIR = ".kfp-local-cache-v2"
LOGS_DIR = ".kfp-local-logs"
# Beside the tasks' logs: what a run's fork server printed while importing.
FORK_SERVER_LOG = "fork-server-{module}.log"
# What the Dockerfile sets in the image (ENV), for every task.
IMAGE_ENV = {"PYTHONPATH": REPO_ROOT, "TF_USE_LEGACY_KERAS": "1"}
OSS_TYPES = "oss"
SPEC_TYPES = "spec"
ARTIFACT_TYPES = (OSS_TYPES, SPEC_TYPES)
# The system.* title the open-source launcher gives a TFX artifact type.
_SYSTEM_TITLES = {"tfx.Model": "system.Model", "tfx.PushedModel": "system.Model",
                  "tfx.Examples": "system.Dataset"}
_PLACEHOLDER = re.compile(r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\]"
                          r"(\.uri|\.output_file)?\}\}")
# How an output parameter's file content becomes its value, by declared type.
_PARAMETER_TYPES = {"NUMBER_INTEGER": int, "NUMBER_DOUBLE": float, "STRING": str,
                    "BOOLEAN": lambda text: text.strip().lower() == "true"}


class SpecError(ValueError):
  """The spec holds something the open-source KFP backend would not run."""


@dataclasses.dataclass
class TaskRun:
  name: str
  state: str = "not run"   # executed | cached | imported | failed | not run
  seconds: Optional[float] = None
  outputs: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
  log_path: str = ""
  # Output parameters ({{$.outputs.parameters['x'].output_file}}), by name.
  parameters: Dict[str, Any] = dataclasses.field(default_factory=dict)


def load_spec(path: str) -> Dict[str, Any]:
  with open(path, encoding="utf-8") as f:
    return yaml.safe_load(f)


def upstream_tasks(spec: Dict[str, Any]) -> Dict[str, Set[str]]:
  """{task: the tasks it waits for}: its `dependentTasks` and the producers
  of its input artifacts and parameters."""
  def producers(task: Dict[str, Any], kind: str, source: str) -> Set[str]:
    return {value[source]["producerTask"]
            for value in task.get("inputs", {}).get(kind, {}).values() if source in value}
  return {name: set(task.get("dependentTasks", []))
          | producers(task, "artifacts", "taskOutputArtifact")
          | producers(task, "parameters", "taskOutputParameter")
          for name, task in spec["root"]["dag"]["tasks"].items()}


def task_order(spec: Dict[str, Any]) -> List[str]:
  """The root DAG's tasks in dependency order (ties by name)."""
  tasks = spec["root"]["dag"]["tasks"]
  upstream = upstream_tasks(spec)
  order, done = [], set()
  while len(order) < len(tasks):
    ready = sorted(n for n in tasks if n not in done and upstream[n] <= done)
    if not ready:
      raise SpecError(f"the task graph has a cycle among {sorted(set(tasks) - done)}")
    order.append(ready[0])
    done.add(ready[0])
  return order


def check_runs_on_open_source_kfp(spec: Dict[str, Any]) -> None:
  """Refuses executors other than container and importer, naming them."""
  others = sorted(label for label, executor in spec["deploymentSpec"]["executors"].items()
                  if not {"container", "importer"} & set(executor))
  if others:
    raise SpecError(f"executors {', '.join(others)} are neither container nor importer "
                    "executors; open-source Kubeflow Pipelines does not run them "
                    "(compile with kubeflow_runner.py --target kfp)")


def oss_type(declared: Dict[str, Any]) -> Dict[str, Any]:
  """The type the open-source KFP launcher hands for a declared artifact type."""
  title = declared.get("schemaTitle") or (
      yaml.safe_load(declared.get("instanceSchema", "")) or {}).get("title", "")
  return {"schemaTitle": title if title.startswith("system.")
          else _SYSTEM_TITLES.get(title, "system.Artifact")}


def run_parameters(spec: Dict[str, Any], given: Dict[str, Any]) -> Dict[str, Any]:
  """The run's parameters: `given` values over the pipeline's defaults;
  a name the pipeline does not declare, or one without a value, is refused."""
  declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
  unknown = sorted(set(given) - set(declared))
  if unknown:
    raise SpecError(f"the pipeline has no parameter {', '.join(unknown)} "
                    f"(its parameters: {', '.join(sorted(declared)) or 'none'})")
  values = {name: parameter["defaultValue"] for name, parameter in declared.items()
            if "defaultValue" in parameter}
  values.update(given)
  missing = sorted(set(declared) - set(values))
  if missing:
    raise SpecError(f"the run gives no value for the pipeline's parameter(s) "
                    f"{', '.join(missing)}")
  return values


def _parameter_values(task: Dict[str, Any], run_values: Dict[str, Any],
                      runs: Dict[str, TaskRun]) -> Dict[str, Any]:
  values = {}
  for name, parameter in task.get("inputs", {}).get("parameters", {}).items():
    if "componentInputParameter" in parameter:
      values[name] = run_values[parameter["componentInputParameter"]]
    elif "taskOutputParameter" in parameter:
      output = parameter["taskOutputParameter"]
      values[name] = runs[output["producerTask"]].parameters[output["outputParameterKey"]]
    elif "constant" in parameter.get("runtimeValue", {}):
      values[name] = parameter["runtimeValue"]["constant"]
    else:
      raise SpecError(f"parameter {name!r}: only constants, the run's parameters and "
                      f"task output parameters are supported, got {parameter}")
  return values


def _substitute(argument: str, executor_input: Dict[str, Any], serialized: str) -> str:
  """One command-line argument with the launcher's placeholders filled in."""
  if argument == "{{$}}":
    return serialized

  def value(match: re.Match) -> str:
    side, kind, name, uri = match.groups()
    if kind == "parameters" and side == "outputs" and uri == ".output_file":
      return executor_input["outputs"]["parameters"][name]["outputFile"]
    if kind == "parameters" and side == "inputs" and not uri:
      found = executor_input["inputs"].get("parameterValues", {})[name]
      return found if isinstance(found, str) else json.dumps(found)
    if kind == "artifacts" and uri == ".uri":
      return executor_input[side]["artifacts"][name]["artifacts"][0]["uri"]
    raise SpecError(f"placeholder {match.group(0)} is not supported")

  substituted = _PLACEHOLDER.sub(value, argument)
  if "{{$" in substituted:
    raise SpecError(f"placeholder in {argument!r} is not supported")
  return substituted


def _fingerprint(component: Dict[str, Any], executor: Dict[str, Any],
                 executor_input: Dict[str, Any]) -> str:
  """The cache key: what the task runs and on what, never where it writes."""
  inputs = executor_input["inputs"]
  key = {
      "component": component,
      "executor": executor,
      "artifacts": {k: [(a["name"], a["uri"]) for a in v["artifacts"]]
                    for k, v in inputs.get("artifacts", {}).items()},
      "parameters": inputs.get("parameterValues", {}),
  }
  return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()


class SpecExecutor:
  """Runs one compiled spec under a local pipeline root."""

  def __init__(self, spec: Dict[str, Any], pipeline_root: Optional[str] = None,
               state_dir: Optional[str] = None,
               enable_cache: bool = True, stream: TextIO = sys.stdout,
               python: str = sys.executable, artifact_types: str = OSS_TYPES,
               run_id: Optional[str] = None, max_parallel: Optional[int] = None,
               fresh_processes: bool = False,
               parameter_values: Optional[Dict[str, Any]] = None):
    check_runs_on_open_source_kfp(spec)
    self._run_values = run_parameters(spec, parameter_values or {})
    if max_parallel is not None and max_parallel < 1:
      raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
    if artifact_types not in ARTIFACT_TYPES:
      raise ValueError(f"artifact_types must be one of {ARTIFACT_TYPES}, got {artifact_types!r}")
    self._typed = oss_type if artifact_types == OSS_TYPES else (lambda declared: declared)
    self._spec = spec
    self._root = pipeline_root or spec["defaultPipelineRoot"]
    if state_dir is None and uris.is_uri(self._root):
      raise SpecError(f"pipeline root {self._root!r} is not local: give the executor a "
                      "local state directory for its own files")
    self._state = state_dir or self._root
    self._enable_cache = enable_cache
    self._stream = stream
    self._python = python
    self.run_id = run_id or new_run_id()
    self._max_parallel = max_parallel or os.cpu_count() or 1
    self._say_lock = threading.Lock()
    self._fresh_processes = fresh_processes
    self._fork_servers: Dict[str, task_forkserver.ForkServer] = {}
    self._fork_servers_lock = threading.Lock()

  def _say(self, line: str) -> None:
    with self._say_lock:
      self._stream.write(line + "\n")
      self._stream.flush()

  def run(self) -> Dict[str, TaskRun]:
    """Runs each task once every task it waits for has succeeded, the ready
    ones side by side; after a failure starts nothing more. Returns the runs
    in dependency order."""
    runs = collections.OrderedDict((name, TaskRun(name)) for name in task_order(self._spec))
    upstream = upstream_tasks(self._spec)
    succeeded: Set[str] = set()
    running: Dict[concurrent.futures.Future, str] = {}
    failed = False
    # The pool is left (its running tasks finished) before the fork servers close.
    with self._closing_fork_servers(), \
         concurrent.futures.ThreadPoolExecutor(self._max_parallel) as pool:
      while True:
        if not failed:
          started = set(running.values())
          for name in runs:  # dependency order: ties start by name
            if (runs[name].state == "not run" and name not in started
                and upstream[name] <= succeeded and len(running) < self._max_parallel):
              running[pool.submit(self._run_timed, name, runs[name], runs)] = name
              started.add(name)
        if not running:
          return runs
        done, _ = concurrent.futures.wait(running,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
          name = running.pop(future)
          future.result()  # a SpecError ends the run as it did before any task
          if runs[name].state == "failed":
            failed = True
          else:
            succeeded.add(name)

  @contextlib.contextmanager
  def _closing_fork_servers(self):
    try:
      yield
    finally:
      for server in self._fork_servers.values():
        server.close()
      self._fork_servers.clear()

  def _fork_server(self, module: str, env: Dict[str, str]) -> task_forkserver.ForkServer:
    """The run's fork server for `module`, started by the first task that needs it."""
    with self._fork_servers_lock:
      if module not in self._fork_servers:
        log_path = os.path.join(self._state, LOGS_DIR, self.run_id,
                                FORK_SERVER_LOG.format(module=module))
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self._fork_servers[module] = task_forkserver.ForkServer(
            self._python, module, REPO_ROOT, env, log_path)
      return self._fork_servers[module]

  def _run_timed(self, name: str, run: TaskRun, runs: Dict[str, TaskRun]) -> None:
    """One task, between its start and finish lines; any error but a
    SpecError fails the task."""
    self._say(f"-> {name} started")
    started = time.monotonic()
    try:
      self._run_task(name, run, runs)
    except SpecError:
      raise
    except Exception as error:  # pylint: disable=broad-except
      run.state = "failed"
      self._say(f"   {name}: {error}")
    run.seconds = time.monotonic() - started
    self._say(f"<- {name} finished in {run.seconds:.1f} s ({run.state})")

  def _input_artifacts(self, task: Dict[str, Any], component: Dict[str, Any],
                       runs: Dict[str, TaskRun]) -> Dict[str, Any]:
    declared = component.get("inputDefinitions", {}).get("artifacts", {})
    artifacts = {}
    for key, source in task.get("inputs", {}).get("artifacts", {}).items():
      output = source["taskOutputArtifact"]
      produced = runs[output["producerTask"]].outputs[output["outputArtifactKey"]]
      artifacts[key] = {"artifacts": [dict(produced,
                                           type=self._typed(declared[key]["artifactType"]))]}
    return artifacts

  def _output_artifacts(self, name: str, component: Dict[str, Any]) -> Dict[str, Any]:
    declared = component.get("outputDefinitions", {}).get("artifacts", {})
    return {key: {"artifacts": [{
        "name": f"{self.run_id}/{name}/{key}",
        "type": self._typed(spec["artifactType"]),
        "uri": uris.join(self._root, self.run_id, name, key),
        "metadata": {}}]} for key, spec in declared.items()}

  def _run_task(self, name: str, run: TaskRun, runs: Dict[str, TaskRun]) -> None:
    task = self._spec["root"]["dag"]["tasks"][name]
    component = self._spec["components"][task["componentRef"]["name"]]
    executor = self._spec["deploymentSpec"]["executors"][component["executorLabel"]]
    if "importer" in executor:
      self._import(name, run, executor["importer"], component)
      return
    launcher_dir = os.path.join(self._state, self.run_id, LAUNCHER_DIR, name)
    executor_input = {
        "inputs": {"artifacts": self._input_artifacts(task, component, runs),
                   "parameterValues": _parameter_values(task, self._run_values, runs)},
        "outputs": {"artifacts": self._output_artifacts(name, component),
                    "parameters": {
                        key: {"outputFile": os.path.join(launcher_dir, "parameters", key)}
                        for key in component.get("outputDefinitions", {}).get("parameters", {})},
                    "outputFile": os.path.join(launcher_dir, "output_metadata.json")},
    }
    caching = self._enable_cache and task.get("cachingOptions", {}).get("enableCache", False)
    cache_path = os.path.join(self._state, CACHE_DIR,
                              _fingerprint(component, executor, executor_input) + ".json")
    if caching and os.path.isfile(cache_path):
      with open(cache_path, encoding="utf-8") as f:
        cached = json.load(f)
      run.outputs, run.parameters = cached["artifacts"], cached["parameters"]
      run.state = "cached"
      return
    self._launch(name, run, executor["container"], executor_input, component)
    if run.state == "executed" and caching:
      os.makedirs(os.path.dirname(cache_path), exist_ok=True)
      with open(cache_path, "w", encoding="utf-8") as f:
        json.dump({"artifacts": run.outputs, "parameters": run.parameters}, f, indent=2,
                  sort_keys=True)

  def _launch(self, name: str, run: TaskRun, container: Dict[str, Any],
              executor_input: Dict[str, Any], component: Dict[str, Any]) -> None:
    serialized = json.dumps(executor_input)
    command = [_substitute(a, executor_input, serialized)
               for a in container.get("command", []) + container.get("args", [])]
    if command and command[0] in ("python", "python3"):
      command[0] = self._python  # The image's interpreter: this checkout's.
    output_file = executor_input["outputs"]["outputFile"]
    os.makedirs(os.path.dirname(output_file), exist_ok=True)
    for parameter in executor_input["outputs"]["parameters"].values():
      os.makedirs(os.path.dirname(parameter["outputFile"]), exist_ok=True)
    for artifacts in executor_input["outputs"]["artifacts"].values():
      uri = artifacts["artifacts"][0]["uri"]
      if not uris.is_uri(uri):  # As the launcher prepares local output folders.
        os.makedirs(uri, exist_ok=True)
    run.log_path = os.path.join(self._state, LOGS_DIR, self.run_id, f"{name}.log")
    os.makedirs(os.path.dirname(run.log_path), exist_ok=True)
    env = dict(os.environ, **IMAGE_ENV)
    module = task_forkserver.module_of(command)
    if module and command[0] == self._python and not self._fresh_processes:
      returncode = self._fork_server(module, env).run(command[3:], env, REPO_ROOT,
                                                      run.log_path)
    else:
      with open(run.log_path, "w", encoding="utf-8") as log:
        returncode = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, check=False).returncode
    if returncode != 0:
      run.state = "failed"
      return
    outputs = {key: artifacts["artifacts"][0]
               for key, artifacts in executor_input["outputs"]["artifacts"].items()}
    if os.path.isfile(output_file):
      with open(output_file, encoding="utf-8") as f:
        written = json.load(f)
      for key, artifacts in written.get("artifacts", {}).items():
        reported = artifacts["artifacts"][0]
        outputs[key] = dict(outputs[key], uri=reported.get("uri", outputs[key]["uri"]),
                            metadata=reported.get("metadata", {}))
    run.outputs = {key: {k: v for k, v in artifact.items() if k != "type"}
                   for key, artifact in outputs.items()}
    declared = component.get("outputDefinitions", {}).get("parameters", {})
    for key, parameter in executor_input["outputs"]["parameters"].items():
      if not os.path.isfile(parameter["outputFile"]):
        raise RuntimeError(f"task {name} succeeded without writing its output parameter "
                           f"{key!r} ({parameter['outputFile']})")
      with open(parameter["outputFile"], encoding="utf-8") as f:
        run.parameters[key] = _PARAMETER_TYPES[declared[key]["parameterType"]](f.read())
    run.state = "executed"

  def _import(self, name: str, run: TaskRun, importer: Dict[str, Any],
              component: Dict[str, Any]) -> None:
    uri = importer.get("artifactUri", {}).get("constant")
    if uri is None:
      raise SpecError(f"importer {name}: only a constant artifactUri is supported")
    (key,) = component.get("outputDefinitions", {}).get("artifacts", {}) or ["artifact"]
    # KFP registers an imported URI once and reuses that artifact (its name)
    # on every later import, so downstream cache keys stay the same.
    run.outputs = {key: {"name": f"imported/{hashlib.sha256(uri.encode()).hexdigest()[:16]}",
                         "uri": uri, "metadata": importer.get("metadata", {})}}
    run.state = "imported"


def failure_log_tail(run: TaskRun, lines: int = 15) -> str:
  """The last lines a failed task logged."""
  if not run.log_path or not os.path.isfile(run.log_path):
    return ""
  with open(run.log_path, encoding="utf-8", errors="replace") as f:
    return "".join(f.readlines()[-lines:])
