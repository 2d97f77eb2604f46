"""Local runs for the tests: `python local_runner.py ARGS` (or `python -m
runners.kubeflow_local ARGS`), as a user runs it, started from an interpreter
that has already imported what a run runs on.

A fresh interpreter spends about 10 s of a two-core machine importing
TensorFlow, Beam, TFX, TFDV, TFT and TFMA before a run does anything; the
suite's dozen local runs paid that each. Each test process keeps one server
that imported that runtime once (multiprocessing's fork server, with
tests/local_run_runtime.py preloaded) and forks every run from it. The run
is still its own process, with its own arguments, environment, working
directory, stdout and stderr; it runs its entry point as `__main__` (the
entry point's own code runs afresh; only the imports it shares with the
runtime are done), as the local spec executor starts its tasks
(runners/task_forkserver.py). What a fresh interpreter does at start-up is
tested where one is started: tests/test_quiet_startup.py, the raced runs
(tests/raced_runs.py), the run killed in training
(e2e_helpers.run_pipeline_killed_at) and the runs refused by their argument
checks (`fresh_interpreter=True`, e2e_helpers.run_refused_pipeline).
"""
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
from typing import List

from runners import task_forkserver

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL_RUNNER = os.path.join(REPO_ROOT, "local_runner.py")
KUBEFLOW_LOCAL = "runners.kubeflow_local"
_SERVER = multiprocessing.get_context("forkserver")
_SERVER.set_forkserver_preload(["tests.local_run_runtime"])


def run_environment() -> dict:
  """The environment every test run gets: the shell's, with legacy Keras."""
  return dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")


def command_line(entry_point: str, args: List[str]) -> List[str]:
  """The command line that starts `entry_point` (a script's path, or a
  module) in a fresh interpreter."""
  if entry_point.endswith(".py"):
    return [sys.executable, entry_point, *args]
  return [sys.executable, "-m", entry_point, *args]


def _become_run(entry_point: str, args: List[str], env: dict, stdout_path: str,
                stderr_path: str) -> None:
  os.setsid()  # Its own process group, as a shell job has.
  task_forkserver.run_as_main(entry_point, args, env, REPO_ROOT, stdout_path, stderr_path)


class _Reader(threading.Thread):
  """Reads a named pipe to its end: until every process that writes it (the
  run, and the noise filter of its quiet start-up, which outlives it
  briefly) has closed it, as `subprocess.run` reads a child's pipes."""

  def __init__(self, path: str):
    super().__init__(daemon=True)
    self.path, self.text = path, ""
    os.mkfifo(path)
    self.start()

  def run(self) -> None:
    with open(self.path, encoding="utf-8", errors="replace") as pipe:
      self.text = pipe.read()

  def finish(self, timeout: float) -> str:
    """The text read, once no process writes the pipe any more."""
    if self.is_alive():
      # A run that died before it opened the pipe leaves the reader waiting
      # for a writer: be one, with nothing to say. (Harmless where the run's
      # writers are still open: the reader sees the end once they close.)
      try:
        os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
      except OSError:  # ENXIO: not opened for reading yet; join times out.
        pass
    self.join(timeout)
    assert not self.is_alive(), f"{self.path} was not closed {timeout} s after the run ended"
    return self.text


def run(args: List[str], timeout: int, fresh_interpreter: bool = False,
        entry_point: str = LOCAL_RUNNER) -> subprocess.CompletedProcess:
  """Runs `entry_point` (local_runner.py, or KUBEFLOW_LOCAL) with `args` to
  its end; its exit status and output. A run still going after `timeout`
  seconds is killed and fails the test."""
  command = command_line(entry_point, args)
  if fresh_interpreter:
    return subprocess.run(command, cwd=REPO_ROOT, env=run_environment(), capture_output=True,
                          text=True, timeout=timeout, check=False)
  with tempfile.TemporaryDirectory(prefix="local-run-") as pipes:
    stdout, stderr = (_Reader(os.path.join(pipes, name)) for name in ("stdout", "stderr"))
    process = _SERVER.Process(target=_become_run, args=(
        entry_point, args, run_environment(), stdout.path, stderr.path))
    process.start()
    process.join(timeout)
    if process.exitcode is None:
      os.killpg(process.pid, signal.SIGKILL)
      process.join()
      raise subprocess.TimeoutExpired(command, timeout)
    return subprocess.CompletedProcess(command, process.exitcode, stdout.finish(60),
                                       stderr.finish(60))
