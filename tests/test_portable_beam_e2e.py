"""End to end: the Beam-based components through Beam's portability framework,
the path the `flink` preset and Spark take (job server + SDK harness), with
Beam's own job server embedded in the runner's process and the SDK harness
in it too (LOOPBACK), on a small slice of the shipped digits."""
import glob
import os
import re

import pytest

from pipeline import configs
from runners.layout import OutputLayout
from tests import e2e_helpers

pytestmark = pytest.mark.e2e
MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
PORTABLE = ["--beam-arg=--runner=PortableRunner", "--beam-arg=--job_endpoint=embed",
            "--beam-arg=--environment_type=LOOPBACK"]


def _log_of(component: str, log: str) -> str:
  """What the run logged while `component` ran."""
  match = re.search(rf"Component {component} is running\.(.*?)Component {component} is "
                    r"finished\.", log, re.S)
  assert match, f"{component} did not run"
  return match.group(1)


def test_statistics_transform_and_evaluator_run_as_portable_beam_jobs(tmp_path_factory):
  _, output_dir, result = e2e_helpers.run_on_small_slice(
      tmp_path_factory, MNIST, 300, 100,
      ["--model", "cnn", "--train-steps", "20", "--min-metric", "0", *PORTABLE])
  states = e2e_helpers.component_states(result.stdout)
  for component in ("TFRecordExampleGen", "StatisticsGen", "Transform", "Evaluator"):
    assert states[component] == "executed", states
  (log_path,) = glob.glob(os.path.join(OutputLayout(output_dir).logs_dir, "*.log"))
  with open(log_path, encoding="utf-8") as f:
    log = f.read()
  for component in ("StatisticsGen", "Transform", "Evaluator"):
    ran = _log_of(component, log)
    assert "portable_runner: Job state changed to DONE" in ran, component
    assert 'Environment "LOOPBACK" has started' in ran, component
  assert "Blessed: yes" in result.stdout
