"""Two CNN runs started together on one output directory, their Beam stages
on Flink: one run for two end-to-end modules.

The concurrency test (tests/test_reliability_e2e.py) needs two runs racing
for one output directory, and the Flink test (tests/test_flink_e2e.py) needs
one complete run whose Beam stages ran on Flink; the run that wins the race
is that run. Once it has finished, its command runs again (`again`), as a
user re-runs it: on Flink too, that run must be answered from the cache. Made once per test session (tests/conftest.py sends the tests that use
it to one pytest-xdist worker), on 300 train / 100 eval shipped digits, a
20-step model and an absolute floor of 0: what is under test is the lock and
the Beam runner, not the model.
"""
import dataclasses
import os
import subprocess
import time

import pytest

from pipeline import configs
from tests import e2e_helpers, local_runs

MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
# The Beam stages on Flink: the runner starts Beam's Flink job server on a
# Flink MiniCluster for the run (components/job_servers.py; `make job-servers`).
ON_FLINK = ["--beam-preset", "flink"]
REFUSAL_WAIT_S = 120


@dataclasses.dataclass(frozen=True)
class RacedRuns:
  output_dir: str
  winner_pid: int
  winner: subprocess.CompletedProcess
  refused: subprocess.CompletedProcess
  # The winner was still running when the refused run had exited.
  refused_while_winner_ran: bool
  again: subprocess.CompletedProcess  # the winner's command, run once the race was over


@pytest.fixture(scope="session")
def raced_runs(tmp_path_factory) -> RacedRuns:
  data_dir = e2e_helpers.write_small_slice(MNIST, str(tmp_path_factory.mktemp("raced-digits")),
                                           300, 100)
  output_dir = str(tmp_path_factory.mktemp("raced") / "out")
  args = ["--model", "cnn", "--data-dir", data_dir, "--output-dir", output_dir,
          "--train-steps", "20", "--min-metric", "0", *ON_FLINK]
  command = local_runs.command_line(local_runs.LOCAL_RUNNER, args)
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # As a user's shell has it.
  started = time.monotonic()
  runs = [subprocess.Popen(command, cwd=e2e_helpers.REPO_ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True) for _ in range(2)]
  # The refused run exits at once, while the other is still running.
  while all(run.poll() is None for run in runs):
    assert time.monotonic() - started < REFUSAL_WAIT_S, "neither run was refused"
    time.sleep(0.2)
  refused = next(run for run in runs if run.poll() is not None)
  winner = next(run for run in runs if run is not refused)
  refused_while_winner_ran = winner.poll() is None
  refused_out, refused_err = refused.communicate()
  winner_out, winner_err = winner.communicate(timeout=1800)
  return RacedRuns(
      output_dir, winner.pid,
      subprocess.CompletedProcess(command, winner.returncode, winner_out, winner_err),
      subprocess.CompletedProcess(command, refused.returncode, refused_out, refused_err),
      refused_while_winner_ran, local_runs.run(args, timeout=1800))
