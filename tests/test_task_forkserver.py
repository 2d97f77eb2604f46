"""The spec executor's fork server (runners/task_forkserver.py): each task is
a process of its own, forked from one interpreter that imported the
entrypoint's runtime once, with the task's arguments, environment, working
directory, log and exit status."""
import concurrent.futures
import json
import os
import sys

import pytest

from runners import task_forkserver

TASK_MODULE = "tests.forkserver_task"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def server(tmp_path):
  env = dict(os.environ, PYTHONPATH=REPO_ROOT)
  started = task_forkserver.ForkServer(sys.executable, TASK_MODULE, REPO_ROOT, env,
                                       str(tmp_path / "server.log"))
  yield started, env
  started.close()


def _run(server, tmp_path, name, exit_code=0, marker="m"):
  started, env = server
  output = tmp_path / f"{name}.json"
  returncode = started.run([str(output), str(exit_code)], dict(env, TASK_MARKER=marker),
                           str(tmp_path), str(tmp_path / f"{name}.log"))
  with open(output, encoding="utf-8") as f:
    return returncode, json.load(f)


def test_tasks_run_as_children_of_one_preloaded_interpreter(server, tmp_path):
  first_code, first = _run(server, tmp_path, "first", marker="one")
  second_code, second = _run(server, tmp_path, "second", exit_code=3, marker="two")
  assert (first_code, second_code) == (0, 3)
  assert first["pid"] != second["pid"] and first["ppid"] == second["ppid"] != os.getpid()
  assert first["preloaded"] and second["preloaded"]
  assert (first["marker"], second["marker"]) == ("one", "two")
  assert first["cwd"] == str(tmp_path)
  assert first["argv"] == [str(tmp_path / "first.json"), "0"]
  log = (tmp_path / "second.log").read_text(encoding="utf-8")
  assert f"task {second['pid']} on stdout" in log and f"task {second['pid']} on stderr" in log


def test_tasks_run_side_by_side(server, tmp_path):
  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    results = list(pool.map(lambda i: _run(server, tmp_path, f"t{i}", exit_code=i), range(3)))
  assert [code for code, _ in results] == [0, 1, 2]
  assert len({task["pid"] for _, task in results}) == 3


def test_a_task_the_module_cannot_start_fails_with_its_traceback_in_the_log(server, tmp_path):
  started, env = server
  returncode = started.run([], env, str(tmp_path), str(tmp_path / "bad.log"))
  assert returncode == 1
  assert "IndexError" in (tmp_path / "bad.log").read_text(encoding="utf-8")


def test_only_python_dash_m_commands_go_through_the_server():
  assert task_forkserver.module_of(["python", "-m", "components.kfp_entrypoint", "--x"]) == (
      "components.kfp_entrypoint")
  assert task_forkserver.module_of(["python", "-c", "print(1)"]) == ""
