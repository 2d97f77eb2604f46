"""Helpers for end-to-end tests: small data slices, runner subprocesses, pushes.

The pipeline runs in its own process as a user runs it (`python
local_runner.py ...`, tests/local_runs.py), so tests see the real exit
status, output and files, and one test's TensorFlow state cannot leak into
another's run.
"""
import glob
import json
import os
import re
import signal
import subprocess
import time
from typing import Callable, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from tfx.dsl.components.base import base_beam_executor
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.eval_report.names import REPORT_JSON
from components.movielens_example_gen.component import MovieLensExampleGen
from modules.common import contract
from runners import beam_presets
from runners.layout import OutputLayout
from tests import local_runs

REPO_ROOT = local_runs.REPO_ROOT


def write_small_slice(src_data_dir: str, dst: str, n_train: int, n_eval: int,
                      transform: Optional[Callable[[tf.train.Example, int], None]] = None,
                      part: int = 0,
                      transform_splits: Sequence[str] = (contract.TRAIN_SPLIT,)) -> str:
  """Copies the first examples of each split (or the `part`-th such slice:
  disjoint parts make spans); `transform(example, index)` may edit the
  examples of `transform_splits` in place (to corrupt them, say)."""
  for split, count in ((contract.TRAIN_SPLIT, n_train), (contract.EVAL_SPLIT, n_eval)):
    files = sorted(glob.glob(os.path.join(src_data_dir, split, "*")))
    os.makedirs(os.path.join(dst, split), exist_ok=True)
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").skip(
        part * count).take(count)
    path = os.path.join(dst, split, f"{split}-slice.tfrecord.gz")
    with tf.io.TFRecordWriter(path, "GZIP") as writer:
      for index, record in enumerate(records):
        example = tf.train.Example.FromString(record.numpy())
        if transform is not None and split in transform_splits:
          transform(example, index)
        writer.write(example.SerializeToString(deterministic=True))
  return dst


def run_pipeline(args: List[str], timeout: int = 1200) -> subprocess.CompletedProcess:
  """Runs local_runner.py with `args` in its own process, forked from the
  tests' fork server (tests/local_runs.py); returns its exit status and
  output."""
  return local_runs.run(args, timeout)


def run_refused_pipeline(args: List[str]) -> subprocess.CompletedProcess:
  """Runs local_runner.py with `args` that its argument or input checks
  refuse, before it imports its runtime: in a fresh interpreter, which costs
  less than starting a fork server for it."""
  return local_runs.run(args, timeout=300, fresh_interpreter=True)


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
  process = subprocess.Popen(
      local_runs.command_line(local_runs.LOCAL_RUNNER, args),
      cwd=REPO_ROOT, env=local_runs.run_environment(), stdout=subprocess.PIPE,
      stderr=subprocess.DEVNULL, text=True, start_new_session=True)
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


def serving_dir(output_dir: str, family: str) -> str:
  """The TF Serving model directory a local run pushes `family` to."""
  return OutputLayout(output_dir).serving_dir(family)


def assert_single_blessed_push(output_dir: str, family: str, stdout: str) -> str:
  """Checks a first run blessed its model and published it once, to TF
  Serving and to TFLite under the same version, as its summary says;
  returns that version."""
  assert "Blessed: yes" in stdout, stdout
  versions = pushed_versions(serving_dir(output_dir, family))
  assert len(versions) == 1, versions
  version_dir = os.path.join(serving_dir(output_dir, family), versions[0])
  assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
  assert f"Pushed: {version_dir}" in stdout
  tflite_dir = os.path.join(OutputLayout(output_dir).tflite_dir(family), versions[0])
  assert os.path.isfile(os.path.join(tflite_dir, "model.tflite"))
  assert f"TFLite: {tflite_dir} ({contract.FLOAT32}, " in stdout
  return versions[0]


def _raw_feature(examples: List[tf.train.Example], key: str) -> np.ndarray:
  """One raw feature of every example, batched as `serving_raw` takes it."""
  values = [example.features.feature[key] for example in examples]
  if values[0].HasField("bytes_list"):
    return np.array([value.bytes_list.value[0] for value in values], dtype=object)
  return np.array([value.int64_list.value for value in values], dtype=np.int64)


def assert_examples_and_raw_features_serve_alike(output_dir: str, family: str,
                                                 data_dir: str, raw_key: str,
                                                 count: int = 16) -> None:
  """The pushed model answers the same for eval examples sent as serialized
  tf.Examples (`serving_default`) and as raw `raw_key` values (`serving_raw`),
  on every output: float outputs to 1e-6, the others exactly."""
  versions = pushed_versions(serving_dir(output_dir, family))
  signatures = tf.saved_model.load(
      os.path.join(serving_dir(output_dir, family), versions[-1])).signatures
  records = [r.numpy() for r in tf.data.TFRecordDataset(
      tf.io.gfile.glob(os.path.join(data_dir, contract.EVAL_SPLIT, "*")),
      compression_type="GZIP").take(count)]
  by_example = signatures[contract.SERVING_DEFAULT](**{contract.EXAMPLES_INPUT:
                                                      tf.constant(records)})
  raw = _raw_feature([tf.train.Example.FromString(r) for r in records], raw_key)
  by_raw = signatures[contract.RAW_SIGNATURE](**{raw_key: tf.constant(raw)})
  assert set(by_example) == set(by_raw) != set()
  for name, value in by_example.items():
    if value.dtype.is_floating:
      np.testing.assert_allclose(value.numpy(), by_raw[name].numpy(), atol=1e-6, err_msg=name)
    else:
      np.testing.assert_array_equal(value.numpy(), by_raw[name].numpy(), err_msg=name)


def run_id_of(stdout: str) -> str:
  """The run id a local run names on its first line ("... (run ID, logs: ...)")."""
  return stdout.split("(run ", 1)[1].split(",", 1)[0]


def run_log(stdout: str) -> str:
  """The log of the run that printed `stdout` (its first line names it)."""
  (log_path,) = re.findall(r"logs: (\S+)\)", stdout)
  with open(log_path, encoding="utf-8") as f:
    return f.read()


def report_json(stdout: str) -> dict:
  """The report.json of the run that printed `stdout` (its summary names the page)."""
  (html_path,) = re.findall(r"^Report: (\S+)", stdout, re.M)
  with open(os.path.join(os.path.dirname(html_path), REPORT_JSON), encoding="utf-8") as f:
    return json.load(f)


def component_states(stdout: str) -> dict:
  """{component: 'executed'|'cached'} from the runner's progress lines."""
  states = {}
  for line in stdout.splitlines():
    if line.startswith("<- ") and line.endswith(")"):
      states[line.split()[1]] = line.rsplit("(", 1)[1].rstrip(")")
  return states


def assert_rerun_executed_nothing_and_pushed_nothing(result: subprocess.CompletedProcess,
                                                     output_dir: str, family: str) -> None:
  """A local run of a command that had run to its end before: every
  component answered from the cache, the served version left as it was."""
  assert result.returncode == 0, result.stdout + result.stderr
  states = component_states(result.stdout)
  assert states.pop("baseline_resolver") == "resolved"
  assert states and set(states.values()) == {"cached"}, states
  serving = serving_dir(output_dir, family)
  (served,) = pushed_versions(serving)
  assert f"Pushed: {os.path.join(serving, served)} (cached: pushed by an earlier run)" \
      in result.stdout


def tfma_point_value(metric: dict) -> float:
  """A metric's point value as TFMA's JSON view holds it: with confidence
  intervals (pipeline/evaluation.py) the value of a `boundedValue`, without
  them a `doubleValue`."""
  return metric["boundedValue"]["value"] if "boundedValue" in metric else metric["doubleValue"]


def run_example_gen(component, output_dir: str):
  """Runs an ExampleGen component's executor as the component configures it
  (on the direct preset's runner, as a pipeline runs it); returns the
  Examples artifact it wrote (under `output_dir`)."""
  exec_properties = {
      key: proto_utils.proto_to_json(value) if hasattr(value, "DESCRIPTOR") else value
      for key, value in component.exec_properties.items()}
  examples = standard_artifacts.Examples()
  examples.uri = output_dir
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=list(beam_presets.DIRECT_ARGS))
  component.executor_spec.executor_class(context).Do(
      {}, {"examples": [examples]}, exec_properties)
  return examples


def run_movielens_example_gen(data_dir: str, output_dir: str, span_request=None):
  """run_example_gen of MovieLensExampleGen over `data_dir`."""
  return run_example_gen(MovieLensExampleGen(input_base=data_dir, span_request=span_request),
                         output_dir)
