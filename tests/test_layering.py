"""The floors hold: no import runs up a floor or in a circle, the contracts at
the bottom import no TensorFlow, and shared names have one definition.

The import graph is read from the source (tests/import_graph.py; run it as
`python -m tests.import_graph` to draw it).
"""
import ast
import os
import subprocess
import sys

from tests import import_graph


def test_no_import_runs_up_a_floor():
  edges = import_graph.import_edges()
  assert any(a.startswith("pipeline.") and b.startswith("components.") for a, b in edges)
  assert import_graph.upward_imports(edges) == []


def test_no_import_cycle():
  assert import_graph.find_cycle(import_graph.import_edges()) is None


def test_the_floor_check_sees_an_upward_and_a_circular_import():
  edges = {("modules.cnn.tflite", "components.tflite_exporter.conversion"),
           ("components.tflite_exporter.conversion", "modules.cnn.tflite")}
  assert import_graph.upward_imports(edges) == [
      ("modules.cnn.tflite", "components.tflite_exporter.conversion")]
  assert import_graph.find_cycle(edges) in (
      ["modules.cnn.tflite", "components.tflite_exporter.conversion", "modules.cnn.tflite"],
      ["components.tflite_exporter.conversion", "modules.cnn.tflite",
       "components.tflite_exporter.conversion"])


def test_contracts_configs_and_argument_checks_import_no_tensorflow_or_tfx():
  """What a runner needs to check its arguments and input loads in a blink."""
  light = ["modules.common.contract", "modules.cnn.features", "modules.lstm.features",
           "modules.two_tower.features", "modules.two_tower.movielens",
           "components.example_sources", "pipeline.configs", "runners.beam_presets",
           "runners.preflight", "runners.layout", "runners.kubeflow_spec"]
  code = (f"import sys\nfor name in {light!r}: __import__(name)\n"
          "heavy = sorted(m for m in ('tensorflow', 'tfx', 'tf_keras', "
          "'tensorflow_transform', 'apache_beam') if m in sys.modules)\n"
          "print(heavy)")
  result = subprocess.run([sys.executable, "-c", code], cwd=import_graph.REPO_ROOT,
                          capture_output=True, text=True, check=True, timeout=120)
  assert result.stdout.strip() == "[]", result.stdout + result.stderr


def _modules_where(predicate):
  """Project modules outside tests/ with an AST node satisfying `predicate`."""
  found = []
  for module, path in sorted(import_graph.project_modules().items()):
    if module.startswith("tests"):
      continue
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read(), path)
    if any(predicate(node) for node in ast.walk(tree)):
      found.append(module)
  return found


def _imports_tfx_v1(node) -> bool:
  if isinstance(node, ast.ImportFrom):
    return node.module == "tfx.v1" or node.module == "tfx" and any(
        alias.name == "v1" for alias in node.names)
  return isinstance(node, ast.Import) and any(
      alias.name == "tfx.v1" or alias.name.startswith("tfx.v1.") for alias in node.names)


def test_project_code_imports_tfx_by_module_not_through_tfx_v1():
  """`tfx.v1` loads every extension, Vertex AI's client among them: 10 s more
  start-up for every pipeline run and every Kubeflow task."""
  assert _imports_tfx_v1(ast.parse("from tfx import v1 as tfx").body[0])
  assert _imports_tfx_v1(ast.parse("import tfx.v1.dsl").body[0])
  assert not _imports_tfx_v1(ast.parse("from tfx import types").body[0])
  assert _modules_where(_imports_tfx_v1) == []


def test_split_names_beam_args_and_feature_naming_are_defined_once():
  for split in ("train", "eval"):
    assert _modules_where(lambda n, split=split: (
        isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
        and n.value.value == split)) == ["modules.common.contract"]
  assert _modules_where(lambda n: isinstance(n, ast.Constant)
                        and n.value == "--direct_running_mode=in_memory") == [
                            "runners.beam_presets"]
  assert _modules_where(lambda n: isinstance(n, ast.FunctionDef)
                        and n.name == "transformed_name") == ["modules.common.contract"]


def test_the_layout_page_shows_the_floors():
  with open(os.path.join(import_graph.REPO_ROOT, "docs", "layout.md"), encoding="utf-8") as f:
    layout = f.read()
  for floor in ("modules/", "components/", "pipeline/", "runners/", "local_runner.py"):
    assert floor in layout, floor
