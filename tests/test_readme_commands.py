"""The README and the docs pages it links: their commands run as written on
a machine `make run` set up, their links lead somewhere, and the README
stays short enough to read.

Users copy these lines. A bare `python` is the machine's 3.11, which cannot
import TFX 1.16; a module or script that was moved or renamed fails only when
someone pastes the line. Both are checked here, for every shell block and
every inline command of README.md and docs/*.md.
"""
import glob
import os
import re
from typing import Dict, Iterator, List

from tests import import_graph

README = os.path.join(import_graph.REPO_ROOT, "README.md")
DOCS = os.path.join(import_graph.REPO_ROOT, "docs")
MAKEFILE = os.path.join(import_graph.REPO_ROOT, "Makefile")
# What a newcomer reads before the docs: one screen or two.
README_MAX_LINES = 200
VENV_BIN = ".venv/bin/"
# Programs the project's environment provides; a README line must run them
# from the venv.
VENV_PROGRAMS = ("python", "python3", "python3.10", "pytest", "pip", "tensorboard")
# Inline code spans that are commands (a program then arguments), as opposed
# to names of modules or flags.
INLINE_COMMAND = re.compile(r"`((?:\.venv/bin/)?(?:python3?(?:\.10)?|pytest|pip|tensorboard) [^`]+)`")
# Entry points that run inside the Kubeflow image, where the image's own
# interpreter is the right one (docs/kubeflow.md).
IMAGE_ENTRY_POINTS = ("components.kfp_entrypoint",
                      "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor")
# A Markdown link's target: ](target) or ](target#anchor).
LINK = re.compile(r"\]\(([^)\s#]*)(?:#[^)]*)?\)")


def _pages() -> Dict[str, str]:
  """{path: text} of the README and every docs page."""
  pages = {}
  for path in [README, *sorted(glob.glob(os.path.join(DOCS, "*.md")))]:
    with open(path, encoding="utf-8") as f:
      pages[path] = f.read()
  return pages


def _readme() -> str:
  return "".join(_pages().values())


def _shell_commands(text: str) -> Iterator[str]:
  """Each command of the README's bash blocks, continuation lines joined and
  comments dropped."""
  for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S):
    joined = re.sub(r"\\\n\s*", " ", block)
    for line in joined.splitlines():
      command = line.split(" #", 1)[0].strip()
      if command and not command.startswith("#"):
        yield command


def _inline_commands(text: str) -> Iterator[str]:
  return (match.group(1) for match in INLINE_COMMAND.finditer(text))


def _words(command: str) -> List[str]:
  # Placeholders such as [--flag X] or <version> are not shell syntax, and a
  # quoted JSON body may span lines: words are what the checks need.
  return re.sub(r"[\[\]<>|]", " ", command).split()


def _commands() -> List[str]:
  text = _readme()
  return list(_shell_commands(text)) + list(_inline_commands(text))


def test_readme_has_commands_to_check():
  commands = _commands()
  assert any(c.startswith("make run") for c in commands)
  assert sum(c.startswith(VENV_BIN) for c in commands) >= 5


def test_every_python_command_runs_from_the_venv():
  bare = []
  for command in _commands():
    program = _words(command)[0]
    if os.path.basename(program) in VENV_PROGRAMS and not program.startswith(VENV_BIN):
      if not any(entry in command for entry in IMAGE_ENTRY_POINTS):
        bare.append(command)
  assert not bare, f"README commands not run from {VENV_BIN}: {bare}"


def _module_file_exists(module: str) -> bool:
  path = os.path.join(import_graph.REPO_ROOT, *module.split("."))
  return os.path.isfile(path + ".py") or os.path.isfile(os.path.join(path, "__main__.py"))


def test_every_script_module_and_make_target_exists():
  with open(MAKEFILE, encoding="utf-8") as f:
    targets = set(re.findall(r"^([\w.-]+):", f.read(), re.M))
  missing = []
  for command in _commands():
    words = _words(command)
    if words[0] == "make" and len(words) > 1 and "=" not in words[1]:
      if words[1] not in targets:
        missing.append(command)
    elif words[0] == VENV_BIN + "python":
      if words[1] == "-m":
        if words[2].split(".")[0] in ("pytest", "pip"):
          continue
        if not _module_file_exists(words[2]):
          missing.append(command)
      elif not os.path.isfile(os.path.join(import_graph.REPO_ROOT, words[1])):
        missing.append(command)
  assert not missing, f"README commands naming a script, module or target that is gone: {missing}"


def test_the_readme_fits_on_two_screens_and_links_every_docs_page():
  pages = _pages()
  readme = pages.pop(README)
  assert readme.count("\n") <= README_MAX_LINES
  assert pages, "no docs pages"
  linked = {os.path.normpath(os.path.join(import_graph.REPO_ROOT, target))
            for target in LINK.findall(readme)}
  assert set(pages) <= linked, sorted(set(pages) - linked)


def test_every_relative_link_of_the_readme_and_docs_leads_to_a_file():
  broken = []
  for path, text in _pages().items():
    for target in LINK.findall(text):
      if not target or re.match(r"^[a-z]+://", target):
        continue
      if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(path), target))):
        broken.append(f"{os.path.relpath(path, import_graph.REPO_ROOT)}: {target}")
  assert not broken, broken
