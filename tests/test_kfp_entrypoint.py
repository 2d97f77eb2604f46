"""The image's task entrypoint types artifacts as the spec declares them,
whether the launcher hands them over as Vertex AI does (declared types) or as
open-source KFP does (`system.*`), and then runs TFX's executor runner."""
import json
import os
import subprocess
import sys

import pytest
from tfx.dsl.components.base import base_executor
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.types import standard_artifacts
from tfx.utils import import_utils

from components import kfp_entrypoint
from components.eval_report.component import EvaluationReport
from runners import spec_executor

SEEN = {}


class ProbeExecutor(base_executor.BaseExecutor):
  """Records the artifact classes and properties TFX handed it."""

  def Do(self, input_dict, output_dict, exec_properties):
    SEEN.update(inputs={k: [type(a) for a in v] for k, v in input_dict.items()},
                outputs={k: [type(a) for a in v] for k, v in output_dict.items()},
                split_names=input_dict["examples"][0].split_names,
                exec_properties=exec_properties)
    output_dict["blessing"][0].set_int_custom_property("blessed", 1)


def _schema(title):
  return {"instanceSchema": f"title: {title}\ntype: object\n"}


DECLARED_INPUTS = {"model": _schema("tfx.Model"), "examples": _schema("tfx.Examples"),
                   "report": _schema("tfx_model_factory.EvaluationReport")}
DECLARED_OUTPUTS = {"blessing": _schema("tfx.ModelBlessing")}
OSS_TYPES = {"model": {"schemaTitle": "system.Model"},
             "examples": {"schemaTitle": "system.Dataset"},
             "report": {"schemaTitle": "system.Artifact"},
             "blessing": {"schemaTitle": "system.Artifact"}}


def _argv(tmp_path, shape):
  def typed(key, declared):
    return OSS_TYPES[key] if shape == "oss" else declared

  executor_input = {
      "inputs": {
          "artifacts": {key: {"artifacts": [{
              "name": f"artifacts/{index}", "type": typed(key, declared),
              "uri": str(tmp_path / key),
              "metadata": {"split_names": '["train", "eval"]'} if key == "examples" else {}}]}
              for index, (key, declared) in enumerate(DECLARED_INPUTS.items())},
          "parameterValues": {"note": "hello"}},
      "outputs": {
          "artifacts": {"blessing": {"artifacts": [{
              "name": "artifacts/9", "type": typed("blessing", DECLARED_OUTPUTS["blessing"]),
              "uri": str(tmp_path / "blessing")}]}},
          "outputFile": str(tmp_path / "task" / "output_metadata.json")},
  }
  inputs_spec = {"artifacts": {k: {"artifactType": v} for k, v in DECLARED_INPUTS.items()},
                 "parameters": {"note": {"parameterType": "STRING"}}}
  outputs_spec = {"artifacts": {k: {"artifactType": v} for k, v in DECLARED_OUTPUTS.items()}}
  return ["--executor_class_path", f"{__name__}.ProbeExecutor",
          kfp_entrypoint.INVOCATION_FLAG, json.dumps(executor_input),
          kfp_entrypoint.INPUTS_SPEC_FLAG, json.dumps(inputs_spec),
          kfp_entrypoint.OUTPUTS_SPEC_FLAG, json.dumps(outputs_spec),
          "--runner=DirectRunner"]


@pytest.mark.parametrize("shape", ["vertex", "oss"])
def test_executor_gets_the_declared_tfx_artifact_classes(tmp_path, shape):
  SEEN.clear()
  kfp_entrypoint.main(_argv(tmp_path, shape))
  assert SEEN["inputs"] == {"model": [standard_artifacts.Model],
                            "examples": [standard_artifacts.Examples],
                            "report": [EvaluationReport]}
  assert SEEN["outputs"] == {"blessing": [standard_artifacts.ModelBlessing]}
  assert SEEN["split_names"] == '["train", "eval"]'
  assert SEEN["exec_properties"] == {"note": "hello"}
  with open(tmp_path / "task" / "output_metadata.json") as f:
    written = json.load(f)
  assert written["artifacts"]["blessing"]["artifacts"][0]["metadata"]["blessed"] == 1


@pytest.mark.integration
def test_a_bare_interpreter_runs_a_task_from_its_command_alone(tmp_path):
  """As the image starts every task (the local spec executor forks them from
  an interpreter that imported their runtime: runners/task_forkserver.py)."""
  result = subprocess.run(
      [sys.executable, "-m", "components.kfp_entrypoint", *_argv(tmp_path, "oss")],
      cwd=spec_executor.REPO_ROOT, env=dict(os.environ, **spec_executor.IMAGE_ENV),
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / "task" / "output_metadata.json") as f:
    written = json.load(f)
  assert written["artifacts"]["blessing"]["artifacts"][0]["metadata"]["blessed"] == 1


def test_without_the_wrapper_tfx_cannot_read_the_open_source_shape(tmp_path):
  argv = _argv(tmp_path, "oss")
  at = argv.index(kfp_entrypoint.OUTPUTS_SPEC_FLAG)
  del argv[at:at + 2]  # TFX's own entrypoint knows no outputs spec.
  with pytest.raises(ImportError, match="system"):
    kubeflow_v2_run_executor.main(kubeflow_v2_run_executor._parse_flags(  # pylint: disable=protected-access
        ["prog", *argv]))


def test_ui_types_are_handed_to_tfx_as_the_classes_that_carry_their_names():
  for ui_type, class_path in kfp_entrypoint.UI_TYPE_CLASSES.items():
    assert import_utils.import_class_by_path(class_path).TYPE_NAME == ui_type
    typed = kfp_entrypoint.declared_types(
        {"outputs": {"artifacts": {"page": {"artifacts": [{"type": {"schemaTitle": ui_type}}]}}}},
        None, {"artifacts": {"page": {"artifactType": {"schemaTitle": ui_type}}}})
    assert typed["outputs"]["artifacts"]["page"]["artifacts"][0]["type"] == {
        "instanceSchema": f"title: {class_path}\ntype: object\n"}


def _package(root, name):
  """A package whose __init__ counts its runs, with one submodule."""
  package_dir = root / name
  package_dir.mkdir()
  (package_dir / "__init__.py").write_text(
      "import builtins\nbuiltins.INIT_RUNS = getattr(builtins, 'INIT_RUNS', 0) + 1\n"
      "from .part import VALUE\nINIT_VALUE = VALUE + 1\n")
  (package_dir / "part.py").write_text("VALUE = 41\n")


def test_deferred_package_init_runs_only_when_the_package_itself_is_used(
    tmp_path, monkeypatch):
  import builtins  # pylint: disable=import-outside-toplevel
  import importlib  # pylint: disable=import-outside-toplevel
  _package(tmp_path, "deferred_probe")
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setattr(builtins, "INIT_RUNS", 0, raising=False)
  try:
    kfp_entrypoint.defer_package_init("deferred_probe")
    assert importlib.import_module("deferred_probe.part").VALUE == 41
    assert builtins.INIT_RUNS == 0  # a submodule imports without the __init__
    from deferred_probe import INIT_VALUE  # pylint: disable=import-outside-toplevel,import-error
    assert INIT_VALUE == 42 and builtins.INIT_RUNS == 1
    kfp_entrypoint.defer_package_init("deferred_probe")  # already imported: left alone
    assert importlib.import_module("deferred_probe").INIT_VALUE == 42
    assert builtins.INIT_RUNS == 1
  finally:
    for name in ("deferred_probe", "deferred_probe.part"):
      sys.modules.pop(name, None)
