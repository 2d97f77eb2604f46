"""The pipeline image's task entrypoint: TFX's Kubeflow v2 executor runner,
given the artifact types the spec declares.

Vertex AI Pipelines hands a task its artifacts typed as the spec declares
them (`instanceSchema: "title: tfx.Model ..."`); the open-source KFP 2.x
launcher hands them typed `system.Model`, `system.Dataset`,
`system.Artifact`, ... with an empty instance schema (kubeflow/pipelines
#13476; the sky-uk/kfp-operator TFX patch image works around the same
thing). TFX's `kubeflow_v2_run_executor` re-creates each artifact's Python
class from that type, so with the open-source shape it cannot (`import
system.Model` fails) or picks the wrong class (Examples and a generic
Dataset both arrive as `system.Dataset`).

This wrapper takes the declared types from the spec itself — the inputs
spec TFX already passes (`--json_serialized_inputs_spec_args`) and the
outputs spec the compiler adds (`--json_serialized_outputs_spec_args`,
runners/kubeflow_spec.py) — writes them into the executor input, and then
runs TFX's entrypoint unchanged (but for the worker package TFX would build
for Beam stages that run in the task's own process, components/in_process_beam.py).
A Beam task whose options name a Flink or Spark cluster
(`--runner=FlinkRunner --flink_master=HOST:PORT`) submits to it through Beam's
job server for the engine, started in the task from the jars the image
carries (components/job_servers.py).
With the Vertex shape it changes nothing.
A task that touches `s3://` (MinIO, KFP's default artifact store) gets
tensorflow-io's S3 filesystem registered first; credentials and endpoint come
from the standard AWS environment variables (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL for Beam's boto3 client,
S3_ENDPOINT for tensorflow-io), never from the spec.
Its Beam stages share one boto3 client per configuration instead of
building one per file operation (components/beam_s3_clients.py).

    python -m components.kfp_entrypoint --executor_class_path C \\
        --json_serialized_invocation_args '{{$}}' \\
        --json_serialized_inputs_spec_args JSON --json_serialized_outputs_spec_args JSON \\
        [beam args ...]
"""
import argparse
import importlib.util
import json
import logging
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

# Types the KFP and Vertex UIs render, by their names there, and the classes
# that carry those names here (components/kfp_ui.py): TFX imports a custom
# type by its name, which `system.HTML` is not.
UI_TYPE_CLASSES = {"system.HTML": "components.kfp_ui.KubeflowHtml",
                   "system.Metrics": "components.kfp_ui.KubeflowMetrics"}
S3_SCHEME = "s3://"
INVOCATION_FLAG = "--json_serialized_invocation_args"
INPUTS_SPEC_FLAG = "--json_serialized_inputs_spec_args"
OUTPUTS_SPEC_FLAG = "--json_serialized_outputs_spec_args"


def _importable(declared: Dict[str, Any]) -> Dict[str, Any]:
  """A declared type, or the importable class path of a UI type."""
  title = declared.get("schemaTitle") or declared.get("instanceSchema", "")
  for ui_type, class_path in UI_TYPE_CLASSES.items():
    if title in (ui_type, f"title: {ui_type}") or title.startswith(f"title: {ui_type}\n"):
      return {"instanceSchema": f"title: {class_path}\ntype: object\n"}
  return declared


def declared_types(executor_input: Dict[str, Any], inputs_spec: Optional[Dict[str, Any]],
                   outputs_spec: Optional[Dict[str, Any]]) -> Dict[str, Any]:
  """`executor_input` with every artifact typed as the spec declares it (UI
  types as the classes that carry their names)."""
  fixed = json.loads(json.dumps(executor_input))
  for side, spec in (("inputs", inputs_spec), ("outputs", outputs_spec)):
    declared = (spec or {}).get("artifacts", {})
    for key, artifacts in fixed.get(side, {}).get("artifacts", {}).items():
      if key in declared:
        for artifact in artifacts.get("artifacts", []):
          artifact["type"] = _importable(declared[key]["artifactType"])
  return fixed


def parse_args(argv: List[str]) -> Tuple[argparse.Namespace, List[str]]:
  """TFX's flags plus the outputs spec; everything else is a Beam argument."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--executor_class_path", required=True)
  parser.add_argument(INVOCATION_FLAG, required=True)
  parser.add_argument(INPUTS_SPEC_FLAG)
  parser.add_argument(OUTPUTS_SPEC_FLAG)
  return parser.parse_known_args(argv)


def typed_arguments(argv: List[str]) -> Tuple[argparse.Namespace, List[str]]:
  """The arguments for TFX's entrypoint, the executor input re-typed."""
  args, beam_args = parse_args(argv)
  load = lambda text: json.loads(text) if text else None  # noqa: E731
  args.json_serialized_invocation_args = json.dumps(declared_types(
      json.loads(args.json_serialized_invocation_args),
      load(args.json_serialized_inputs_spec_args),
      load(getattr(args, OUTPUTS_SPEC_FLAG[2:]))))
  return args, beam_args


# Packages whose __init__ TFX's entrypoint runs without needing it: importing
# `tfx.components.evaluator.executor` runs tfx/components/__init__.py, which
# imports every component (Keras Tuner and the bulk inferrer among them), and
# `kfp.pipeline_spec` runs the whole KFP SDK's __init__. 2.2 s of every
# task's 10 s start-up on a two-core machine.
DEFERRED_PACKAGE_INITS = ("tfx.components", "kfp")


def defer_package_init(name: str) -> None:
  """Registers package `name` with its __init__ not yet run: its submodules
  import as usual; the first attribute looked up on the package itself runs
  the __init__ then. Nothing changes if the package is already imported."""
  if name in sys.modules:
    return
  spec = importlib.util.find_spec(name)
  package = importlib.util.module_from_spec(spec)

  def run_init_on_first_use(attribute: str):
    del package.__getattr__
    spec.loader.exec_module(package)
    return getattr(package, attribute)

  package.__getattr__ = run_init_on_first_use
  sys.modules[name] = package


def import_runtime() -> None:
  """Imports what every task runs on (TensorFlow, Beam, TFX's executor
  runner), the deferred package inits in place: `main` does it once the flags
  parsed; the local spec executor's fork server does it once for all its
  tasks (runners/task_forkserver.py)."""
  # pylint: disable=import-outside-toplevel,unused-import
  for package in DEFERRED_PACKAGE_INITS:
    defer_package_init(package)
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor  # noqa: F401
  from components import in_process_beam  # noqa: F401


def _runs_beam(executor_class_path: str) -> bool:
  """Whether the executor runs Beam pipelines (the tasks that need a job server)."""
  # pylint: disable=import-outside-toplevel
  from tfx.dsl.components.base import base_beam_executor
  from tfx.utils import import_utils
  executor_class = import_utils.import_class_by_path(executor_class_path)
  return issubclass(executor_class, base_beam_executor.BaseBeamExecutor)


def main(argv: Optional[List[str]] = None) -> None:
  # pylint: disable=import-outside-toplevel  (TFX only once the flags parsed)
  parsed = typed_arguments(sys.argv[1:] if argv is None else argv)
  import_runtime()
  on_s3 = S3_SCHEME in parsed[0].json_serialized_invocation_args
  if on_s3:
    # TensorFlow 2.16 reads s3:// only through tensorflow-io's filesystem
    # plugin, which registers itself on import.
    import tensorflow_io  # noqa: F401  pylint: disable=unused-import
    from components.beam_s3_clients import share_s3_clients
    share_s3_clients()
  from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
  from components.in_process_beam import skip_worker_package_for_in_process_beam
  skip_worker_package_for_in_process_beam()
  args, beam_args = parsed
  if not _runs_beam(args.executor_class_path):
    kubeflow_v2_run_executor.main(parsed)
  else:
    from components import job_servers
    with job_servers.submitting_to_cluster(beam_args) as cluster_beam_args:
      kubeflow_v2_run_executor.main((args, cluster_beam_args))
  if on_s3 and argv is None:
    # tensorflow-io's S3 client aborts the interpreter while it shuts down
    # ("pure virtual method called", exit 134) after the task succeeded, which
    # the launcher would report as a failure: end the process here.
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)  # pylint: disable=protected-access


if __name__ == "__main__":
  main()
