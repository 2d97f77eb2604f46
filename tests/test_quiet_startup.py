"""Entry points start quietly: no TensorFlow / Google-library start-up noise
reaches the terminal, while real errors still do.

Each case runs a real entry point (or the start-up of one) in a subprocess,
as a user would, and reads what reaches its stdout and stderr.
"""
import os
import subprocess
import sys

import pytest

from runners import preflight
from tests import lock_testing
from tests.e2e_helpers import REPO_ROOT

pytestmark = pytest.mark.integration  # Every case starts a fresh interpreter.

# What users met before any progress (issue 17): one line of each kind.
NOISE = ("Unable to register cuDNN factory", "Unable to register cuFFT factory",
         "Unable to register cuBLAS factory", "FutureWarning",
         "non-supported Python version")


def _run(args, timeout=300) -> subprocess.CompletedProcess:
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


def _noise(result: subprocess.CompletedProcess):
  return [line for line in (result.stdout + result.stderr).splitlines()
          if any(noise in line for noise in NOISE)]


# Imports what the pipeline imports, then fails twice over as real code can:
# a C++-style line straight to descriptor 2, and a Python exception. Quiet,
# it names a log file after the imports (as the local runner names its run's)
# and writes one more line the terminal is spared.
_START = ("import os, sys\n"
          "from components.quiet_startup import quiet_startup, send_hidden_lines_to\n"
          "if sys.argv[1] == 'quiet':\n"
          "  quiet_startup()\n"
          "import tensorflow, apache_beam\n"
          "send_hidden_lines_to(sys.argv[2])\n"
          "os.write(2, b'W0000 00:00:1796680969.153276    2859 later.cc:1] "
          "a later hidden line\\n')\n"
          "os.write(2, b'E0000 something.cc:1] a real C++ error\\n')\n"
          "raise RuntimeError('a real Python error')\n")


def test_quiet_startup_keeps_the_noise_off_the_terminal_for_the_log_and_real_errors_on_it(
    tmp_path):
  """Held until the log file is named, then written there, and every later
  hidden line with it; C++ INFO lines (TF_CPP_MIN_LOG_LEVEL unset, as an
  entry point with a log file leaves it) included; real errors stay on the
  terminal only."""
  log_path = tmp_path / "run.log"
  loud = _run(["-c", _START, "loud", str(tmp_path / "unused.log")])
  quiet = _run(["-c", _START, "quiet", str(log_path)])
  # The noise is there without it (so this test can fail) ...
  assert {n for n in NOISE if n in loud.stderr} == set(NOISE), loud.stderr
  # ... and gone with it, while both errors and the exit status stay.
  assert _noise(quiet) == [], quiet.stderr
  assert "a later hidden line" not in quiet.stderr
  for result in (loud, quiet):
    assert result.returncode == 1
    assert "a real C++ error" in result.stderr
    assert "RuntimeError: a real Python error" in result.stderr
  # What the terminal was spared is in the log, and nothing else.
  log = log_path.read_text(encoding="utf-8")
  assert {n for n in NOISE if n in log} == set(NOISE), log
  assert "This TensorFlow binary is optimized" in log  # A C++ INFO line.
  assert log.rstrip().endswith("a later hidden line")
  assert "a real C++ error" not in log and "a real Python error" not in log
  assert not (tmp_path / "unused.log").exists()  # Without quiet_startup nothing is held.


def test_lines_written_just_before_an_abort_still_arrive():
  """The filter outlives the process it filters (a C++ CHECK failure aborts)."""
  aborting = ("import os\n"
              "from components.quiet_startup import quiet_startup\n"
              "quiet_startup()\n"
              "os.write(2, b'F0000 check.cc:1] Check failed: the last words\\n')\n"
              "os.abort()\n")
  result = _run(["-c", aborting])
  assert result.returncode < 0
  assert "Check failed: the last words" in result.stderr


def test_kubeflow_compile_prints_only_its_result(tmp_path):
  output = tmp_path / "cnn.yaml"
  result = _run(["kubeflow_runner.py", "--model", "cnn", "--image", "example.com/image:1",
                 "--pipeline-root", "gs://bucket/root", "--data-root", "gs://bucket/data",
                 "--serving-root", "gs://bucket/serving", "--tflite-root", "gs://bucket/tflite",
                 "--output", str(output)])
  assert result.returncode == 0, result.stderr
  assert result.stdout == f"Wrote {output} (cnn, target kfp, image example.com/image:1)\n"
  assert result.stderr == ""


def test_a_run_on_a_held_output_dir_stops_at_once_naming_the_holder(tmp_path):
  """Both runners that run pipelines here; no noise before the message."""
  holder = lock_testing.started_holder(tmp_path, "run-held")
  try:
    for runner in (["local_runner.py"], ["-m", "runners.kubeflow_local"]):
      result = _run([*runner, "--model", "cnn", "--output-dir", str(tmp_path)], timeout=60)
      assert result.returncode == preflight.EXIT_OUTPUT_LOCKED, result.stderr
      assert result.stdout == ""
      assert result.stderr.startswith(f"error: another run is using {tmp_path}: "
                                      f"pid {holder.pid} "), result.stderr
      assert "run run-held: hold run-held" in result.stderr
  finally:
    holder.kill()
    holder.wait()
  assert sorted(os.listdir(tmp_path)) == [".run.lock"], "a refused run writes nothing"


def test_review_with_nothing_to_show_prints_only_why(tmp_path):
  result = _run(["-m", "runners.review", "--model", "cnn", "--output-dir", str(tmp_path)])
  assert result.returncode == 1
  assert result.stdout == ""
  assert result.stderr.strip() == (
      f"No runs recorded: {tmp_path / 'metadata.sqlite'} does not exist.")
