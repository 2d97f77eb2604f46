"""End to end: the CNN pipeline on a small slice of the shipped digits."""
import os
import re

import pytest

from modules.cnn import features
from pipeline import configs
from tests import e2e_helpers

pytestmark = pytest.mark.e2e
MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
RUN_ARGS = ["--model", "cnn", "--train-steps", "150", "--min-metric", "0.7"]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
  return e2e_helpers.run_on_small_slice(tmp_path_factory, MNIST, 640, 200, RUN_ARGS)


def test_blessed_model_is_pushed_to_serving_and_tflite_under_one_version(first_run):
  _, output_dir, result = first_run
  e2e_helpers.assert_single_blessed_push(output_dir, "cnn", result.stdout)


def test_pushed_model_serves_examples_and_raw_pixels_alike(first_run):
  data_dir, output_dir, _ = first_run
  e2e_helpers.assert_examples_and_raw_features_serve_alike(
      output_dir, "cnn", data_dir, features.IMAGE_KEY)


def test_rerun_without_changes_executes_nothing_and_pushes_nothing(first_run):
  data_dir, output_dir, _ = first_run
  serving_dir = e2e_helpers.serving_dir(output_dir, "cnn")
  before = e2e_helpers.pushed_versions(serving_dir)
  result = e2e_helpers.run_pipeline([*RUN_ARGS, "--data-dir", data_dir, "--output-dir", output_dir])
  assert result.returncode == 0, result.stdout + result.stderr
  states = e2e_helpers.component_states(result.stdout)
  assert states.pop("baseline_resolver") == "resolved"
  assert states and set(states.values()) == {"cached"}, states
  assert e2e_helpers.pushed_versions(serving_dir) == before


def test_corrupted_feature_stops_at_the_validator_with_nothing_pushed(first_run, tmp_path):
  _, output_dir, _ = first_run

  def corrupt_pixels(example, index):
    if index % 10 == 0:  # Every tenth digit gets a pixel value no image can have.
      example.features.feature["image"].int64_list.value[0] = 4096

  bad_data = e2e_helpers.write_small_slice(MNIST, str(tmp_path / "bad"), 640, 200, corrupt_pixels)
  serving_dir = e2e_helpers.serving_dir(output_dir, "cnn")
  before = e2e_helpers.pushed_versions(serving_dir)
  result = e2e_helpers.run_pipeline([*RUN_ARGS, "--data-dir", bad_data, "--output-dir", output_dir])
  assert result.returncode == 3, result.stdout + result.stderr
  assert "feature 'image'" in result.stderr
  assert "split 'train'" in result.stderr
  states = e2e_helpers.component_states(result.stdout)
  assert "Transform" not in states and "Trainer" not in states and "Pusher" not in states
  assert e2e_helpers.pushed_versions(serving_dir) == before


def test_train_labels_drifting_from_the_reference_stop_at_the_gate(first_run, tmp_path):
  _, output_dir, _ = first_run

  def mostly_sevens(example, index):
    if index % 5:  # Four digits in five become 7s: valid values, drifted shares.
      example.features.feature["label"].int64_list.value[:] = [7]

  drifted = e2e_helpers.write_small_slice(MNIST, str(tmp_path / "drifted"), 640, 200,
                                          mostly_sevens)
  serving_dir = e2e_helpers.serving_dir(output_dir, "cnn")
  before = e2e_helpers.pushed_versions(serving_dir)
  result = e2e_helpers.run_pipeline([*RUN_ARGS, "--data-dir", drifted, "--output-dir", output_dir])
  assert result.returncode == 3, result.stdout + result.stderr
  # The train split drifted from the reference, and the eval split (left
  # alone) is skewed against it.
  assert "drift of the train split against the reference statistics, feature 'label'" \
      in result.stderr
  assert "skew of the eval split against the train split, feature 'label'" in result.stderr
  states = e2e_helpers.component_states(result.stdout)
  assert re.search(r"^\s+AnomaliesGate\s+failed", result.stdout, re.M), result.stdout
  assert "Transform" not in states and "Trainer" not in states
  assert e2e_helpers.pushed_versions(serving_dir) == before
