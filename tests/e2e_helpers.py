"""Helpers for end-to-end tests: small data slices, runner subprocesses, pushes.

The pipeline runs in a subprocess exactly as a user runs it
(`python local_runner.py ...`), so tests see the real exit status, output and
files, and one test's TensorFlow state cannot leak into another's run.
"""
import glob
import os
import signal
import subprocess
import sys
import time
from typing import Callable, List, Optional

import tensorflow as tf

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_small_slice(src_data_dir: str, dst: str, n_train: int, n_eval: int,
                      transform: Optional[Callable[[tf.train.Example, int], None]] = None
                      ) -> str:
  """Copies the first examples of each split; `transform(example, index)` may
  edit train examples in place (to corrupt them, say)."""
  for split, count in (("train", n_train), ("eval", n_eval)):
    files = sorted(glob.glob(os.path.join(src_data_dir, split, "*")))
    os.makedirs(os.path.join(dst, split), exist_ok=True)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").take(count)
    path = os.path.join(dst, split, f"{split}-slice.tfrecord.gz")
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
      for index, record in enumerate(records):
        example = tf.train.Example.FromString(record.numpy())
        if transform is not None and split == "train":
          transform(example, index)
        writer.write(example.SerializeToString(deterministic=True))
  return dst


def run_pipeline(args: List[str], timeout: int = 1200) -> subprocess.CompletedProcess:
  """Runs local_runner.py with `args`; returns its exit status and output."""
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "local_runner.py"), *args],
                        cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                        timeout=timeout, check=False)


def run_on_small_slice(tmp_path_factory, src_data_dir: str, n_train: int, n_eval: int,
                       args: List[str]):
  """Runs local_runner.py with `args` on a fresh small slice of shipped data
  into a fresh output dir; checks it succeeded. Returns (data_dir,
  output_dir, result)."""
  data_dir = write_small_slice(src_data_dir, str(tmp_path_factory.mktemp("data")),
                               n_train, n_eval)
  output_dir = str(tmp_path_factory.mktemp("outputs"))
  result = run_pipeline([*args, "--data-dir", data_dir, "--output-dir", output_dir])
  assert result.returncode == 0, result.stdout + result.stderr
  return data_dir, output_dir, result


def run_pipeline_killed_at(args: List[str], component: str, delay_s: float,
                           timeout: int = 900) -> str:
  """Starts local_runner.py, SIGKILLs it `delay_s` after `component` starts.

  Returns the output seen before the kill. The runner's whole process group
  is killed, as an out-of-memory kill or a lost machine would.
  """
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.Popen(
      [sys.executable, os.path.join(REPO_ROOT, "local_runner.py"), *args],
      cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
      text=True, start_new_session=True)
  seen = []
  deadline = time.monotonic() + timeout
  try:
    for line in process.stdout:
      seen.append(line)
      if line.startswith(f"-> {component} started"):
        time.sleep(delay_s)
        break
      if time.monotonic() > deadline:
        break
  finally:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
  assert any(line.startswith(f"-> {component} started") for line in seen), "".join(seen)
  return "".join(seen)


def pushed_versions(serving_dir: str) -> List[str]:
  """Numeric version directories TF Serving would load, oldest first."""
  if not os.path.isdir(serving_dir):
    return []
  return sorted((d for d in os.listdir(serving_dir) if d.isdigit()), key=int)


def assert_single_blessed_push(output_dir: str, family: str, stdout: str) -> str:
  """Checks a first run blessed its model and published it once, to TF
  Serving and to TFLite under the same version, as its summary says;
  returns that version."""
  assert "Blessed: yes" in stdout, stdout
  serving_dir = os.path.join(output_dir, "serving", family)
  versions = pushed_versions(serving_dir)
  assert len(versions) == 1, versions
  version_dir = os.path.join(serving_dir, versions[0])
  assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
  assert f"Pushed: {version_dir}" in stdout
  tflite_dir = os.path.join(output_dir, "tflite", family, versions[0])
  assert os.path.isfile(os.path.join(tflite_dir, "model.tflite"))
  assert f"TFLite: {tflite_dir} (float32, " in stdout
  return versions[0]


def component_states(stdout: str) -> dict:
  """{component: 'executed'|'cached'} from the runner's progress lines."""
  states = {}
  for line in stdout.splitlines():
    if line.startswith("<- ") and line.endswith(")"):
      states[line.split()[1]] = line.rsplit("(", 1)[1].rstrip(")")
  return states
