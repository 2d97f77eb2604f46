"""Reliability end to end (CNN, small data): a worse model is not shipped,
and a run killed during training resumes from its cached upstream results."""
import os

import pytest

from pipeline import configs
from runners import preflight
from tests import e2e_helpers

pytestmark = pytest.mark.e2e
MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
  return e2e_helpers.write_small_slice(MNIST, str(tmp_path_factory.mktemp("digits")), 640, 200)


def _args(data_dir, output_dir, *extra):
  return ["--model", "cnn", "--data-dir", data_dir, "--output-dir", output_dir, *extra]


def test_worse_model_than_blessed_baseline_is_neither_blessed_nor_pushed(digits, tmp_path):
  output_dir = str(tmp_path / "out")
  serving_dir = e2e_helpers.serving_dir(output_dir, "cnn")
  good = e2e_helpers.run_pipeline(_args(digits, output_dir, "--train-steps", "150",
                                        "--min-metric", "0.7", "--require-blessing"))
  assert good.returncode == 0 and "Blessed: yes" in good.stdout, good.stdout + good.stderr
  versions = e2e_helpers.pushed_versions(serving_dir)
  # One training step: far worse than the baseline. The absolute floor is set
  # to 0 so only the comparison with the blessed baseline can refuse it.
  worse = e2e_helpers.run_pipeline(_args(digits, output_dir, "--train-steps", "1",
                                         "--min-metric", "0.0"))
  assert worse.returncode == 0, worse.stdout + worse.stderr
  assert "Blessed: NO" in worse.stdout
  assert "change vs baseline" in worse.stdout
  assert "Pushed: nothing (model not blessed)" in worse.stdout
  assert e2e_helpers.pushed_versions(serving_dir) == versions
  # CI asks for a blessed model: the same (cached) run then fails with its own status.
  required = e2e_helpers.run_pipeline(_args(digits, output_dir, "--train-steps", "1",
                                            "--min-metric", "0.0", "--require-blessing"))
  assert required.returncode == preflight.EXIT_NOT_BLESSED, required.stdout + required.stderr
  assert "NOT BLESSED: --require-blessing was given" in required.stderr
  assert e2e_helpers.pushed_versions(serving_dir) == versions


def test_run_killed_during_training_resumes_with_one_new_version(digits, tmp_path):
  output_dir = str(tmp_path / "out")
  args = _args(digits, output_dir, "--train-steps", "150", "--min-metric", "0.7")
  e2e_helpers.run_pipeline_killed_at(args, "Trainer", delay_s=5)
  serving_dir = e2e_helpers.serving_dir(output_dir, "cnn")
  assert e2e_helpers.pushed_versions(serving_dir) == []
  resumed = e2e_helpers.run_pipeline(args)
  assert resumed.returncode == 0, resumed.stdout + resumed.stderr
  states = e2e_helpers.component_states(resumed.stdout)
  for upstream in ("TFRecordExampleGen", "StatisticsGen", "Transform"):
    assert states[upstream] == "cached", states
  assert states["Trainer"] == "executed" and states["Pusher"] == "executed"
  versions = e2e_helpers.pushed_versions(serving_dir)
  assert len(versions) == 1
  assert os.path.isfile(os.path.join(serving_dir, versions[0], "saved_model.pb"))
  assert not [n for n in os.listdir(serving_dir) if not n.isdigit()]
