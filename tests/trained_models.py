"""Small models trained once per test session for the modules of a family.

A family's module tests (its signatures, its Keras graph) and its TFLite
tests (conversion, parity, the app-side inputs, the prediction CLI) need the
same kind of model: trained for a few steps through the real `preprocessing_fn`
(tft_beam) and `run_fn`. It is trained once for all of them; the TFLite
tests convert a copy, since the exporter's artifact layout moves the
SavedModel (tests/tflite_testing.py). The LSTM is not trained here: the
session's LSTM pipeline run (tests/lstm_run.py) already trains one on the
same slice of reviews, and its Trainer's model is handed out instead.
tests/conftest.py sends the modules that share a model to one pytest-xdist
worker.
"""
import os
import shutil
from typing import Dict, List, Tuple

import pytest

from components.movielens_example_gen import executor as example_gen_executor
from data.interactions import generate_interactions
from modules.cnn import model as cnn_model, preprocessing as cnn_preprocessing
from modules.two_tower import model as two_tower_model, preprocessing as two_tower_preprocessing
from pipeline import configs
from tests import tft_testing
from tests.lstm_run import N_EVAL, N_TRAIN, REVIEWS, LstmRun

DIGITS = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
SMALL_INTERACTIONS = generate_interactions.GeneratorConfig(
    num_users=60, num_items=120, num_interactions=3000, min_per_user=20)
TRAIN_STEPS = 40


def _shipped_examples(data_dir: str, n_train: int, n_eval: int) -> Dict[str, List[bytes]]:
  """The first serialized examples of a shipped family's train and eval splits."""
  return {split: tft_testing.read_serialized(os.path.join(data_dir, split, "*"), count)
          for split, count in (("train", n_train), ("eval", n_eval))}


@pytest.fixture(scope="session")
def digit_examples() -> Dict[str, List[bytes]]:
  """640 train and 200 eval digits of the shipped data, serialized."""
  return _shipped_examples(DIGITS, 640, 200)


@pytest.fixture(scope="session")
def cnn_trained(tmp_path_factory, digit_examples) -> Tuple[str, str]:
  """(work dir, export dir) of a CNN trained 80 steps on 640 real digits:
  well above chance, so int8 parity and "the model learns" prove something."""
  work_dir = str(tmp_path_factory.mktemp("cnn_train"))
  return work_dir, tft_testing.train_family_model(
      cnn_model.run_fn, cnn_preprocessing.preprocessing_fn, configs.CNN.schema_path(),
      digit_examples["train"], digit_examples["eval"], work_dir, train_steps=80)


@pytest.fixture(scope="session")
def review_examples() -> Dict[str, List[bytes]]:
  """1,200 train and 300 eval reviews of the shipped data, serialized: the
  slice the session's LSTM pipeline run runs on (read here, so that the
  tests that need only the reviews do not wait for that run)."""
  return _shipped_examples(REVIEWS, N_TRAIN, N_EVAL)


@pytest.fixture(scope="session")
def lstm_trained(tmp_path_factory, lstm_run: LstmRun) -> Tuple[str, str]:
  """(work dir, export dir) of the LSTM the session's pipeline run trained
  40 steps on the first 1,200 train reviews (less the validation ExampleGen
  carves out of them; tests/lstm_run.py), laid out as `train_family_model`
  lays out its own: the work dir's transform/ is the run's Transform graph
  and the export dir, inside it, its Trainer's SavedModel. Both are links
  into the run's outputs, which its end-to-end tests read: use them as they
  are, or `copy_of` them (which copies what they link to)."""
  work_dir = str(tmp_path_factory.mktemp("lstm_trained"))
  os.symlink(lstm_run.transform_graph_dir, tft_testing.transform_graph_dir(work_dir))
  export_dir = os.path.join(work_dir, "serving_model")
  os.symlink(lstm_run.serving_model_dir, export_dir)
  return work_dir, export_dir


@pytest.fixture(scope="session")
def interaction_splits(tmp_path_factory) -> Dict[str, List[bytes]]:
  """Train, validation and eval examples of a small generated interaction log
  (60 users, 120 items), split as MovieLensExampleGen splits it."""
  data_dir = str(tmp_path_factory.mktemp("interactions"))
  generate_interactions.generate(SMALL_INTERACTIONS, seed=5, output_dir=data_dir)
  return {split: [e.SerializeToString() for e in example_gen_executor.split_examples(
      data_dir, split)] for split in ("train", "validation", "eval")}


@pytest.fixture(scope="session")
def two_tower_trained(tmp_path_factory, interaction_splits) -> Tuple[str, str]:
  """(work dir, export dir) of a two-tower model trained 40 steps on them."""
  work_dir = str(tmp_path_factory.mktemp("two_tower_train"))
  return work_dir, tft_testing.train_family_model(
      two_tower_model.run_fn, two_tower_preprocessing.preprocessing_fn,
      configs.TWO_TOWER.schema_path(), interaction_splits["train"],
      interaction_splits["validation"], work_dir, train_steps=TRAIN_STEPS)


def copy_of(trained: Tuple[str, str], destination: str) -> Tuple[str, str]:
  """A copy of a trained (work dir, export dir) under `destination`, for a
  test that rearranges the files."""
  work_dir, export_dir = trained
  shutil.copytree(work_dir, destination)
  return destination, os.path.join(destination, os.path.relpath(export_dir, work_dir))
