"""Starts spec tasks from an interpreter that has already imported their
entrypoint's runtime: a fork server, one per spec run.

Every task of a compiled spec runs `python -m components.kfp_entrypoint
...`; a fresh interpreter spends 8-12 s of a two-core machine importing
TensorFlow, Beam and TFX before the task does anything, which is most of a
small task's time. The fork server imports that runtime once
(`import_runtime()` of the entrypoint module, when it has one) and forks a
child per task. Each child is still its own process, as a task's container
is: it gets the task's environment, working directory, arguments and log
file, runs the module as `__main__` (the module's own code runs afresh; only
the imports it shares with the runtime are already done), and its exit
status is the task's. `SpecExecutor(fresh_processes=True)` starts every
task in a new interpreter instead, exactly as the image does.

Protocol (JSON lines): the executor writes {"id", "module", "args", "env",
"cwd", "log_path"} to the server's stdin; the server answers {"id",
"returncode"} on its stdout once that child has exited (a negative
returncode: killed by that signal, as subprocess reports it). The server
exits when its stdin closes, leaving running children to finish.

    python -m runners.task_forkserver ENTRYPOINT_MODULE
"""
import atexit
import importlib
import json
import logging
import os
import runpy
import select
import subprocess
import sys
import threading
import traceback
from typing import Dict, List, NoReturn

# How often the server looks for children that have exited while it waits
# for requests.
_REAP_INTERVAL_S = 0.05


def module_of(command: List[str]) -> str:
  """The module of a `python -m MODULE ...` command, or "" for any other."""
  if len(command) >= 3 and command[1] == "-m":
    return command[2]
  return ""


class ForkServer:
  """The executor's side: starts the server and runs tasks through it; safe to
  call from several threads at once."""

  def __init__(self, python: str, module: str, cwd: str, env: Dict[str, str],
               log_path: str):
    self.module = module
    with open(log_path, "w", encoding="utf-8") as log:  # What its imports print.
      self._process = subprocess.Popen(
          [python, "-m", __name__, module], cwd=cwd, env=env, stdin=subprocess.PIPE,
          stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
    self._lock = threading.Lock()
    self._next_id = 0
    self._waiting: Dict[int, List] = {}
    self._reader = threading.Thread(target=self._read_results, daemon=True)
    self._reader.start()

  def _read_results(self) -> None:
    for line in self._process.stdout:
      result = json.loads(line)
      with self._lock:
        done, slot = self._waiting.pop(result["id"])
      slot.append(result["returncode"])
      done.set()
    with self._lock:  # The server is gone: no answer will come.
      for done, slot in self._waiting.values():
        slot.append(None)
        done.set()
      self._waiting.clear()

  def run(self, args: List[str], env: Dict[str, str], cwd: str, log_path: str) -> int:
    """Runs `python -m <module> *args` as a child of the server; its return code."""
    done, slot = threading.Event(), []
    with self._lock:
      request_id = self._next_id
      self._next_id += 1
      self._waiting[request_id] = [done, slot]
      self._process.stdin.write(json.dumps(
          {"id": request_id, "module": self.module, "args": args, "env": env, "cwd": cwd,
           "log_path": log_path}) + "\n")
      self._process.stdin.flush()
    done.wait()
    if slot[0] is None:
      raise RuntimeError(f"the fork server for {self.module} exited "
                         f"(status {self._process.poll()}) before the task ended")
    return slot[0]

  def close(self) -> None:
    self._process.stdin.close()
    self._process.wait()
    self._reader.join()


# --- the server's side ---------------------------------------------------------


def run_as_main(target: str, args: List[str], env: Dict[str, str], cwd: str,
                stdout_path: str, stderr_path: str) -> NoReturn:
  """In a forked child: becomes `python -m TARGET ARGS` (`python TARGET ARGS`
  where TARGET is a .py file) with this environment, working directory and
  output files (one file may take both), then exits with its status."""
  code = 1
  try:
    atexit._clear()  # pylint: disable=protected-access  (the server's exit is not the task's)
    descriptors = ({stdout_path: [1, 2]} if stdout_path == stderr_path
                   else {stdout_path: [1], stderr_path: [2]})
    for path, fds in descriptors.items():
      output = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
      for fd in fds:
        os.dup2(output, fd)
      os.close(output)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = [target, *args]
    try:
      if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
      else:
        sys.modules.pop(target, None)  # Its code runs afresh, as __main__.
        runpy.run_module(target, run_name="__main__", alter_sys=True)
      code = 0
    except SystemExit as end:
      if end.code is None or isinstance(end.code, int):
        code = end.code or 0
      else:
        print(end.code, file=sys.stderr)
    except BaseException:  # pylint: disable=broad-except  (the task failed; say why)
      traceback.print_exc()
    atexit._run_exitfuncs()  # pylint: disable=protected-access  (as interpreter exit does)
    logging.shutdown()
  finally:
    for stream in (sys.stdout, sys.stderr):
      try:
        stream.flush()
      except Exception:  # pylint: disable=broad-except  (nothing left to report to)
        pass
    os._exit(code)  # pylint: disable=protected-access  (never return into the server)


def _run_child(request: Dict, results_fd: int) -> NoReturn:
  """In the forked child: becomes the task, then exits with its status."""
  os.close(results_fd)
  run_as_main(request["module"], request["args"], request["env"], request["cwd"],
              request["log_path"], request["log_path"])


def _serve(module: str) -> None:
  # Results go to the executor on the original stdout alone; anything the
  # imports print goes to the server's log.
  results_fd = os.dup(1)
  os.dup2(2, 1)
  results = os.fdopen(results_fd, "w")
  runtime = importlib.import_module(module)
  if hasattr(runtime, "import_runtime"):
    runtime.import_runtime()
  sys.modules.pop(module, None)
  children: Dict[int, int] = {}
  pending, open_input = b"", True
  while open_input or children:
    if open_input:
      readable, _, _ = select.select([0], [], [], _REAP_INTERVAL_S)
      if readable:
        chunk = os.read(0, 1 << 16)
        open_input = bool(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
          request = json.loads(line)
          pid = os.fork()
          if pid == 0:
            _run_child(request, results_fd)
          children[pid] = request["id"]
    else:
      select.select([], [], [], _REAP_INTERVAL_S)
    while children:
      pid, status = os.waitpid(-1, os.WNOHANG)
      if pid == 0:
        break
      results.write(json.dumps({"id": children.pop(pid),
                                "returncode": os.waitstatus_to_exitcode(status)}) + "\n")
      results.flush()


if __name__ == "__main__":
  _serve(sys.argv[1])
