"""Compiling a family's pipeline into a Kubeflow Pipelines v2 spec, per target.

Two targets, one `create_pipeline`:

- `kfp`, open-source Kubeflow Pipelines 2.x: its backend runs container and
  importer executors only (kubeflow/pipelines backend/src/v2/compiler:
  "non-container and non-importer executor not implemented"), so the
  Evaluator's baseline comes from the ServedBaseline container task, which
  reads the serving root, instead of a TFX resolver. That task reads state
  outside the pipeline, so KFP must never answer it from its cache.
- `vertex`, Vertex AI Pipelines: runs TFX's resolver executors, so the
  baseline is TFX's LatestBlessedModelStrategy (the KFP v2 compiler accepts
  only TFX's own strategies).

Specs use the pipeline-spec schema 2.1: parameters reach the task as
`parameterValues` with an inputs spec, the form the KFP 2.x launcher hands
over (with schema 2.0, TFX reads parameters only from the deprecated
`parameters` field, which that launcher leaves empty). Every task runs
through the image's entrypoint wrapper (components/kfp_entrypoint.py), which
types artifacts as the spec declares them whichever launcher hands them over;
the compiler gives it each component's outputs spec. Both targets take the
span, the window and drift acceptance as run-time parameters, with a task
resolving the spans before the ExampleGen (runners/kubeflow_run_parameters.py).
"""
import dataclasses
import json
import os
from typing import Any, Dict, List, Optional

import yaml

from components import kfp_entrypoint
from pipeline import configs
from runners import kubeflow_run_parameters
from runners import roots as roots_lib

# The tasks whose Beam pipelines do the data work, by the spec's task names.
BEAM_TASKS = ("TFRecordExampleGen", "MovieLensExampleGen", "StatisticsGen", "Transform",
              "Evaluator")
TRAINER_TASK = "Trainer"
DEFAULT_GPU_TYPE = "nvidia.com/gpu"

KFP = "kfp"
VERTEX = "vertex"
TARGETS = (KFP, VERTEX)
SERVED_BASELINE_TASK = "served_baseline"
TFX_ENTRYPOINT = ["python", "-m",
                  "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
ENTRYPOINT = ["python", "-m", kfp_entrypoint.__name__]


@dataclasses.dataclass(frozen=True)
class Resources:
  """What the Trainer and the Beam tasks ask the cluster for; None: nothing.

  The Trainer gets its CPU and memory as request and limit (a training pod
  that is throttled or evicted halfway wastes the run) and `trainer_gpu`
  accelerators of `gpu_type` (`nvidia.com/gpu` on open-source KFP, e.g.
  `NVIDIA_TESLA_T4` on Vertex); the Beam tasks get requests only, so a
  DirectRunner pod may burst when the node has room.
  """
  trainer_cpu: Optional[float] = None      # cores (runners/quantities.py)
  trainer_memory: Optional[float] = None   # GB (runners/quantities.py)
  trainer_gpu: Optional[int] = None
  gpu_type: str = DEFAULT_GPU_TYPE
  beam_cpu: Optional[float] = None         # cores
  beam_memory: Optional[float] = None      # GB

  def __post_init__(self):
    for name in ("trainer_cpu", "trainer_memory", "trainer_gpu", "beam_cpu", "beam_memory"):
      value = getattr(self, name)
      if value is not None and not value > 0:
        raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")

  def for_task(self, task: str) -> Dict[str, Any]:
    """The spec's `resources` of a container task (empty: none asked)."""
    spec: Dict[str, Any] = {}
    if task == TRAINER_TASK:
      if self.trainer_cpu:
        spec.update(cpuLimit=self.trainer_cpu, cpuRequest=self.trainer_cpu)
      if self.trainer_memory:
        spec.update(memoryLimit=self.trainer_memory, memoryRequest=self.trainer_memory)
      if self.trainer_gpu:
        spec["accelerator"] = {"type": self.gpu_type, "count": self.trainer_gpu}
    elif task in BEAM_TASKS:
      if self.beam_cpu:
        spec["cpuRequest"] = self.beam_cpu
      if self.beam_memory:
        spec["memoryRequest"] = self.beam_memory
    return spec


def compile_spec(family: configs.FamilyConfig, roots: roots_lib.Roots, target: str,
                 image: str, beam_pipeline_args: List[str],
                 resources: Resources = Resources(), **options: Any) -> Dict:
  """The PipelineSpec of `family` for `target`, as the dict that is written out.

  The pipeline root becomes the spec's defaultPipelineRoot, so a run created
  from the file needs no pipeline_root of its own (it may still override it);
  TFX's runner would put it only into the PipelineJob it writes as JSON.
  `options` are further `create_pipeline` arguments (train_steps, ...).
  """
  # pylint: disable=import-outside-toplevel
  from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner
  from pipeline import pipeline

  if target not in TARGETS:
    raise ValueError(f"unknown Kubeflow target {target!r}; choose one of {', '.join(TARGETS)}")
  arguments = roots_lib.pipeline_arguments(
      family, roots, beam_pipeline_args=beam_pipeline_args,
      baseline_strategy=(None if target == KFP
                         else latest_blessed_model_strategy.LatestBlessedModelStrategy),
      kubeflow_ui_artifacts=True, **options)
  tfx_pipeline = pipeline.create_pipeline(**arguments)
  runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
      config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
          default_image=image, use_pipeline_spec_2_1=True))
  spec = runner.run(tfx_pipeline, write_out=False)["pipelineSpec"]
  spec["defaultPipelineRoot"] = roots.pipeline_root
  if target == KFP:
    spec["root"]["dag"]["tasks"][SERVED_BASELINE_TASK]["cachingOptions"] = {
        "enableCache": False}
  _name_ui_types_as_kfp_does(spec)
  _run_through_entrypoint(spec)
  kubeflow_run_parameters.add_run_parameters(spec, family, arguments["serving_model_dir"])
  _ask_for(resources, spec)
  return spec


def _ask_for(resources: Resources, spec: Dict) -> None:
  """Sets each task's resource requests and limits on its container."""
  executors = spec["deploymentSpec"]["executors"]
  for task_name, task in spec["root"]["dag"]["tasks"].items():
    wanted = resources.for_task(task_name)
    if wanted:
      label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
      executors[label]["container"]["resources"] = wanted


def _name_ui_types_as_kfp_does(spec: Dict) -> None:
  """Declares the UI types (`system.HTML`, `system.Metrics`) by schema title
  and version, the form KFP's own SDK writes and its UI renders; TFX writes
  every custom type as an instance schema."""
  for component in spec["components"].values():
    for side in ("inputDefinitions", "outputDefinitions"):
      for artifact in component.get(side, {}).get("artifacts", {}).values():
        schema = artifact["artifactType"].get("instanceSchema", "")
        title = (yaml.safe_load(schema) or {}).get("title", "") if schema else ""
        if title.startswith("system."):
          artifact["artifactType"] = {"schemaTitle": title, "schemaVersion": "0.0.1"}


def _run_through_entrypoint(spec: Dict) -> None:
  """Points every TFX container task at the entrypoint wrapper and hands it
  the component's outputs spec, right after the inputs spec TFX passes."""
  executors = spec["deploymentSpec"]["executors"]
  for component in spec["components"].values():
    container = executors[component["executorLabel"]].get("container")
    if not container or container["command"] != TFX_ENTRYPOINT:
      continue
    outputs = {"artifacts": component.get("outputDefinitions", {}).get("artifacts", {})}
    args = container["args"]
    after = (kfp_entrypoint.INPUTS_SPEC_FLAG if kfp_entrypoint.INPUTS_SPEC_FLAG in args
             else kfp_entrypoint.INVOCATION_FLAG)
    at = args.index(after) + 2
    container["command"] = list(ENTRYPOINT)
    container["args"] = (args[:at] + [kfp_entrypoint.OUTPUTS_SPEC_FLAG,
                                      json.dumps(outputs, sort_keys=True)] + args[at:])


def write_spec(spec: Dict, path: str) -> None:
  """Writes the spec as KFP's YAML package, keys sorted so that recompiling
  an unchanged pipeline gives the same bytes."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", encoding="utf-8") as out:
    out.write(f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n")
    yaml.safe_dump(spec, out, sort_keys=True)
