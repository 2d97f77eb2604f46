"""Every import in the project, as a graph of its modules, checked against the floors.

    .venv/bin/python -m tests.import_graph            # Mermaid graph of the packages
    .venv/bin/python -m tests.import_graph --modules  # one node per module

Floors, bottom up; a module may import only from its own floor or below:

    modules/     family code and family contracts (no orchestration)
    components/  custom TFX components (tfx_model_factory/: their artifact types
                 by the names Kubeflow specs give them)
    pipeline/    configs, create_pipeline, evaluation config, schemas
    runners/     what only runners use
    local_runner.py, kubeflow_runner.py
    data/, bench/, tests/   may import anything below them

Imports are read from the source (ast), including those inside functions,
so a lazy import cannot hide an upward edge.
"""
import argparse
import ast
import os
import sys
from typing import Dict, Iterator, List, Optional, Set, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOORS: Dict[str, int] = {
    "modules": 0, "components": 1, "tfx_model_factory": 1, "pipeline": 2, "runners": 3,
    "local_runner": 4, "kubeflow_runner": 4, "data": 5, "bench": 5, "tests": 5,
}
_SKIPPED_DIRS = {".venv", ".git", "build", "outputs", "__pycache__"}


def project_modules() -> Dict[str, str]:
  """{dotted module name: file path} of every Python file of the project."""
  found = {}
  for directory, subdirs, files in os.walk(REPO_ROOT):
    subdirs[:] = sorted(d for d in subdirs if d not in _SKIPPED_DIRS and not d.startswith("."))
    for name in files:
      if name.endswith(".py") and name != "setup.py":
        path = os.path.join(directory, name)
        parts = os.path.relpath(path, REPO_ROOT)[:-len(".py")].split(os.sep)
        if parts[-1] == "__init__":
          parts = parts[:-1]
        found[".".join(parts)] = path
  return found


def _imported(module: str, is_package: bool, node: ast.AST,
              modules: Dict[str, str]) -> Iterator[str]:
  """Project modules `node` imports: for `from pkg import name`, the
  submodule pkg.name when there is one, else pkg itself."""
  if isinstance(node, ast.Import):
    yield from (alias.name for alias in node.names if alias.name in modules)
  elif isinstance(node, ast.ImportFrom):
    base = node.module or ""
    if node.level:
      package = module.split(".") if is_package else module.split(".")[:-1]
      package = package[:len(package) - (node.level - 1)]
      base = ".".join(package + ([base] if base else []))
    for alias in node.names:
      if f"{base}.{alias.name}" in modules:
        yield f"{base}.{alias.name}"
      elif base in modules:
        yield base


def import_edges() -> Set[Tuple[str, str]]:
  """(importer, imported) pairs between project modules."""
  modules = project_modules()
  edges = set()
  for module, path in modules.items():
    with open(path, encoding="utf-8") as f:
      tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
      edges.update((module, imported) for imported in _imported(
          module, path.endswith("__init__.py"), node, modules) if imported != module)
  return edges


def floor_of(module: str) -> int:
  top = module.split(".")[0]
  if top not in FLOORS:
    raise KeyError(f"module {module} is on no floor; add {top!r} to FLOORS")
  return FLOORS[top]


def upward_imports(edges: Set[Tuple[str, str]]) -> List[Tuple[str, str]]:
  """Imports from a lower floor to a higher one."""
  return sorted((a, b) for a, b in edges if floor_of(a) < floor_of(b))


def find_cycle(edges: Set[Tuple[str, str]]) -> Optional[List[str]]:
  """One import cycle between modules, or None."""
  graph: Dict[str, List[str]] = {}
  for a, b in sorted(edges):
    graph.setdefault(a, []).append(b)
  state: Dict[str, int] = {}  # 1: on the current path, 2: done
  path: List[str] = []

  def visit(node: str) -> Optional[List[str]]:
    state[node] = 1
    path.append(node)
    for nxt in graph.get(node, []):
      if state.get(nxt) == 1:
        return path[path.index(nxt):] + [nxt]
      if nxt not in state:
        cycle = visit(nxt)
        if cycle:
          return cycle
    path.pop()
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


def _package(module: str) -> str:
  """The node a module is drawn as in the package graph."""
  parts = module.split(".")
  if parts[0] in ("local_runner", "kubeflow_runner", "data", "bench", "tests"):
    return parts[0]
  return ".".join(parts[:2])


def mermaid(edges: Set[Tuple[str, str]], by_package: bool = True) -> str:
  """The import graph as a Mermaid flowchart, floors as subgraphs."""
  name = _package if by_package else (lambda m: m)
  drawn = sorted({(name(a), name(b)) for a, b in edges if name(a) != name(b)})
  nodes = sorted({n for edge in drawn for n in edge})
  lines = ["flowchart BT"]
  for floor in sorted(set(FLOORS.values())):
    members = [n for n in nodes if floor_of(n) == floor]
    if members:
      lines.append(f"  subgraph floor{floor}")
      lines.extend(f"    {n.replace('.', '_')}[{n}]" for n in members)
      lines.append("  end")
  lines.extend(f"  {a.replace('.', '_')} --> {b.replace('.', '_')}" for a, b in drawn)
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--modules", action="store_true", help="one node per module")
  args = parser.parse_args(argv)
  edges = import_edges()
  print(mermaid(edges, by_package=not args.modules))
  problems = [f"upward import: {a} -> {b}" for a, b in upward_imports(edges)]
  cycle = find_cycle(edges)
  if cycle:
    problems.append("import cycle: " + " -> ".join(cycle))
  for problem in problems:
    print(problem, file=sys.stderr)
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main())
