"""End to end: the Beam-based components through Beam's portability framework,
the path the `flink` preset and Spark take (job server + SDK harness), with
Beam's own job server embedded in the runner's process and the SDK harness
in it too (LOOPBACK). On the run that won the shared race
(tests/raced_runs.py: 300 train / 100 eval digits, a 20-step model)."""
import glob
import os
import re

import pytest

from runners.layout import OutputLayout
from tests import e2e_helpers

pytestmark = pytest.mark.e2e


def _log_of(component: str, log: str) -> str:
  """What the run logged while `component` ran."""
  match = re.search(rf"Component {component} is running\.(.*?)Component {component} is "
                    r"finished\.", log, re.S)
  assert match, f"{component} did not run"
  return match.group(1)


def test_statistics_transform_and_evaluator_run_as_portable_beam_jobs(raced_runs):
  result = raced_runs.winner
  assert result.returncode == 0, result.stdout + result.stderr
  states = e2e_helpers.component_states(result.stdout)
  for component in ("TFRecordExampleGen", "StatisticsGen", "Transform", "Evaluator"):
    assert states[component] == "executed", states
  (log_path,) = glob.glob(os.path.join(OutputLayout(raced_runs.output_dir).logs_dir, "*.log"))
  with open(log_path, encoding="utf-8") as f:
    log = f.read()
  for component in ("StatisticsGen", "Transform", "Evaluator"):
    ran = _log_of(component, log)
    assert "portable_runner: Job state changed to DONE" in ran, component
    assert 'Environment "LOOPBACK" has started' in ran, component
  assert "Blessed: yes" in result.stdout
