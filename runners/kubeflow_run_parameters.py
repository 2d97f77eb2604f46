"""The choices a Kubeflow user makes per run, as the compiled spec's run-time
parameters, and the task that resolves the spans a run reads.

One spec serves every day of a recurring run and every back-fill, so what
changes between runs is not compiled in:

- `span` (0: the newest present), `window` (0: the family's window, as
  many spans as exist) and `accept_drift` (1: let drift through) are the
  pipeline's parameters (`kfp.Client().create_run_from_pipeline_package(...,
  arguments={"span": 12})`, or a recurring run's `params`);
- a `SpanResolution` task (components/span_resolution.py), never cached,
  resolves the window before the ExampleGen and hands it the resolved
  span, window and input fingerprint as parameter values, so a new span
  is a cache miss and the same span again a cache hit (KFP keys its cache
  on parameter values);
- the data gate takes `accept_drift` from the run.
"""
import json
from typing import Any, Dict, Optional

from components import spans
from pipeline import configs

SPAN, WINDOW, ACCEPT_DRIFT = "span", "window", "accept_drift"
# Each parameter's default: the newest span, the family's window, no drift accepted.
RUN_PARAMETERS = {SPAN: 0, WINDOW: 0, ACCEPT_DRIFT: 0}
RESOLUTION_TASK = "SpanResolution"
RESOLUTION_MODULE = "components.span_resolution"
# The ExampleGen parameters the resolution sets (its outputs of the same meaning).
_RESOLVED = {spans.SPAN_PARAMETER: "span", spans.WINDOW_PARAMETER: "window",
             spans.FULL_WINDOW_PARAMETER: "full_window",
             spans.FINGERPRINT_PARAMETER: "fingerprint"}
_INTEGER, _STRING = "NUMBER_INTEGER", "STRING"


def values(span: Optional[int], window: Optional[int], accept_drift: bool) -> Dict[str, int]:
  """A run's parameter values from the runners' --span, --window and --accept-drift."""
  return {SPAN: span or 0, WINDOW: window or 0, ACCEPT_DRIFT: int(accept_drift)}


def _task_with_parameter(spec: Dict[str, Any], parameter: str) -> str:
  (name,) = [name for name, task in spec["root"]["dag"]["tasks"].items()
             if parameter in task.get("inputs", {}).get("parameters", {})]
  return name


def _constant(task: Dict[str, Any], parameter: str) -> Any:
  return task["inputs"]["parameters"][parameter]["runtimeValue"]["constant"]


def add_run_parameters(spec: Dict[str, Any], family: configs.FamilyConfig,
                       serving_dir: str) -> None:
  """Declares the run-time parameters, adds the SpanResolution task and
  feeds its outputs to the ExampleGen and `accept_drift` to the data gate."""
  spec["root"].setdefault("inputDefinitions", {}).setdefault("parameters", {}).update({
      name: {"parameterType": _INTEGER, "defaultValue": default, "isOptional": True}
      for name, default in RUN_PARAMETERS.items()})
  tasks = spec["root"]["dag"]["tasks"]
  example_gen_name = _task_with_parameter(spec, spans.SPAN_PARAMETER)
  example_gen = tasks[example_gen_name]
  example_gen_component = spec["components"][example_gen["componentRef"]["name"]]
  example_gen_executor = spec["deploymentSpec"]["executors"][
      example_gen_component["executorLabel"]]["container"]

  label = f"{RESOLUTION_TASK}_executor"
  spec["components"][RESOLUTION_TASK] = {
      "executorLabel": label,
      "inputDefinitions": {"parameters": {
          SPAN: {"parameterType": _INTEGER}, WINDOW: {"parameterType": _INTEGER}}},
      "outputDefinitions": {"parameters": {
          output: {"parameterType": _STRING if output == "fingerprint" else _INTEGER}
          for output in _RESOLVED.values()}},
  }
  args = ["--input-base", _constant(example_gen, "input_base"),
          "--input-config", _constant(example_gen, "input_config"),
          "--serving-dir", serving_dir, "--default-window", str(family.span_window),
          "--span", "{{$.inputs.parameters['span']}}",
          "--window", "{{$.inputs.parameters['window']}}"]
  for output in _RESOLVED.values():
    args += [f"--{output.replace('_', '-')}-output",
             f"{{{{$.outputs.parameters['{output}'].output_file}}}}"]
  spec["deploymentSpec"]["executors"][label] = {"container": {
      "image": example_gen_executor["image"],
      "command": ["python", "-m", RESOLUTION_MODULE], "args": args}}
  tasks[RESOLUTION_TASK] = {
      "componentRef": {"name": RESOLUTION_TASK},
      "taskInfo": {"name": RESOLUTION_TASK},
      # The directory listing is the input: never answered from the cache.
      "cachingOptions": {"enableCache": False},
      "inputs": {"parameters": {name: {"componentInputParameter": name}
                                for name in (SPAN, WINDOW)}},
  }

  example_gen_component["inputDefinitions"]["parameters"][
      spans.FINGERPRINT_PARAMETER] = {"parameterType": _STRING}
  _declare_in_entrypoint_args(example_gen_executor, example_gen_component)
  for parameter, output in _RESOLVED.items():
    example_gen["inputs"]["parameters"][parameter] = {"taskOutputParameter": {
        "producerTask": RESOLUTION_TASK, "outputParameterKey": output}}
  example_gen["dependentTasks"] = sorted({*example_gen.get("dependentTasks", []),
                                          RESOLUTION_TASK})

  gate = tasks[_task_with_parameter(spec, ACCEPT_DRIFT)]
  gate["inputs"]["parameters"][ACCEPT_DRIFT] = {"componentInputParameter": ACCEPT_DRIFT}


def _declare_in_entrypoint_args(container: Dict[str, Any], component: Dict[str, Any]) -> None:
  """TFX's entrypoint reads parameter types from the inputs spec in its
  arguments: it must list the parameters the component now declares."""
  flag = "--json_serialized_inputs_spec_args"
  for args in (container["args"], container.get("lifecycle", {}).get(
      "preCacheCheck", {}).get("args", [])):
    if flag in args:
      at = args.index(flag) + 1
      inputs_spec = json.loads(args[at])
      inputs_spec["parameters"] = component["inputDefinitions"]["parameters"]
      args[at] = json.dumps(inputs_spec, indent=2, sort_keys=True)
