"""The output directory's run lock: one holder at a time, named to whoever is
refused, and taken over from a run that died holding it.

Holders run in separate processes, as two runs do."""
import json
import os
import signal
import socket
import time

import pytest

from runners import run_lock
from runners.layout import OutputLayout, new_run_id
from tests import lock_testing

def test_a_held_lock_refuses_a_second_run_naming_the_holder(tmp_path):
  holder = lock_testing.started_holder(tmp_path, "run-a")
  try:
    started = time.monotonic()
    with pytest.raises(run_lock.OutputLocked) as refused:
      run_lock.RunLock(str(tmp_path), "run-b")
    assert time.monotonic() - started < 1.0, "refused at once"
  finally:
    holder.kill()
    holder.wait()
  message = str(refused.value)
  assert f"another run is using {tmp_path}" in message
  assert f"pid {holder.pid} on {socket.gethostname()}" in message
  assert "run run-a: hold run-a" in message
  assert refused.value.holder.started.endswith("Z")
  assert OutputLayout(str(tmp_path)).lock_path in message


def test_released_lock_is_taken_with_no_previous_holder(tmp_path):
  holder = lock_testing.started_holder(tmp_path, "run-a", seconds=0)
  assert holder.wait(timeout=30) == 0
  with run_lock.RunLock(str(tmp_path), "run-b") as lock:
    assert lock.previous is None
    with open(lock.path) as f:
      assert json.load(f)["run_id"] == "run-b"
  with open(lock.path) as f:
    assert f.read() == "", "a released lock names no holder"


def test_lock_of_a_killed_run_is_taken_over_and_its_holder_reported(tmp_path):
  holder = lock_testing.started_holder(tmp_path, "run-a")
  os.kill(holder.pid, signal.SIGKILL)
  holder.wait()
  with run_lock.RunLock(str(tmp_path), "run-b") as lock:
    assert lock.previous.pid == holder.pid and lock.previous.run_id == "run-a"
    assert lock.holder.pid == os.getpid()
    # Held again: a third run is refused, naming the new holder.
    with pytest.raises(run_lock.OutputLocked, match=f"pid {os.getpid()} .*run run-b"):
      run_lock.RunLock(str(tmp_path), "run-c")


def test_details_naming_a_live_pid_without_the_lock_do_not_block(tmp_path):
  """A reused pid (here: this very process) does not keep a dead run's lock."""
  path = OutputLayout(str(tmp_path)).lock_path
  with open(path, "w") as f:
    json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": "2000-01-01T00:00:00Z",
               "command": "an earlier run", "run_id": "run-old"}, f)
  with run_lock.RunLock(str(tmp_path), "run-new") as lock:
    assert lock.previous.run_id == "run-old"


def test_runs_racing_for_one_directory_leave_exactly_one_holder(tmp_path):
  racers = [lock_testing.holder(tmp_path, f"run-{i}") for i in range(6)]
  try:
    answers = [racer.stdout.readline().strip() for racer in racers]
    refused = [racer.wait(timeout=60) for racer, answer in zip(racers, answers)
               if answer == "refused"]
  finally:
    for racer in racers:
      racer.kill()
      racer.wait()
  assert sorted(answers) == ["held"] + ["refused"] * 5, answers
  assert refused == [5] * 5


def test_run_ids_and_log_files_differ_within_one_second():
  ids = {new_run_id() for _ in range(100)}
  assert len(ids) == 100
  layout = OutputLayout("/out")
  assert len({layout.log_path("cnn", run_id) for run_id in ids}) == 100
