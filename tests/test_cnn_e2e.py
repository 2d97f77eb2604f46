"""End to end: the CNN pipeline on a small slice of the shipped digits
(tests/cnn_history.py, 640 train / 200 eval digits, a 60-step model).

Proves on the shared run history (whose first run is killed in training and
resumed, tests/test_reliability_e2e.py): a blessed model is pushed to serving and
TFLite under one version and serves tf.Examples and raw pixels alike; the
Trainer never sees the eval split; its in-process Beam stages build no
worker package; a re-run without changes executes and pushes nothing. On
corrupted and on label-drifted copies of the slice, the run stops at the
data gate (exit 3) with nothing trained or pushed. When the slice becomes
span 1 and the next 640 / 200 digits arrive as span 2, the run trains on
both spans, evaluates on span 2 alone and judges against the served model;
a span 3 whose pixels break the schema stops at the gate, naming it; a span
3 that drifted from what the served model learnt stops until a person
accepts the drift."""
import glob
import json
import math
import os
import re

import pytest
import tensorflow as tf
from ml_metadata import metadata_store as mlmd
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from components.atomic_pusher import PUSH_RECORD, WINDOW_SPANS_KEY
from components.example_sources import TFRECORD
from components.span_example_gen import WINDOW_SPANS_PROPERTY
from modules.cnn import features
from modules.common.contract import is_validation_record
from runners.layout import OutputLayout
from pipeline import configs
from tests import e2e_helpers
from tests.cnn_history import GOOD_STEPS, MNIST, N_EVAL, N_TRAIN

pytestmark = pytest.mark.e2e


def test_blessed_model_is_pushed_to_serving_and_tflite_under_one_version(cnn_history):
  e2e_helpers.assert_single_blessed_push(cnn_history.output_dir, "cnn", cnn_history.good.stdout)


def test_pushed_model_serves_examples_and_raw_pixels_alike(cnn_history):
  e2e_helpers.assert_examples_and_raw_features_serve_alike(
      cnn_history.output_dir, "cnn", cnn_history.first_span_dir, features.IMAGE_KEY)


def test_in_process_beam_stages_build_no_worker_package(cnn_history):
  """components/in_process_beam.py: TFX would build an sdist of itself for
  each Beam stage (2.5 s each) for workers an in-process run does not have."""
  # The history's first run was killed in training; its second ran the rest.
  logs = [e2e_helpers.run_log(stdout)
          for stdout in (cnn_history.killed_stdout, cnn_history.good.stdout)]
  log = "".join(logs)
  assert "Component Transform is running" in logs[0]
  assert "Component Evaluator is running" in logs[1]
  assert "Attempting to infer TFX Python dependency" not in log
  # The direct preset names Beam's in-process runner: no stage tries Prism.
  assert "Running pipeline with PrismRunner" not in log


def test_a_fresh_run_logs_the_start_up_lines_kept_off_its_terminal(cnn_history):
  """The history's first run started in a fresh interpreter (a user's run):
  TensorFlow's C++ start-up lines and the Google libraries' warnings, which
  quiet_startup keeps off the terminal, are in the run's log file."""
  log = e2e_helpers.run_log(cnn_history.killed_stdout)
  assert "Unable to register cuDNN factory" in log
  assert re.search(r"^quiet_startup: hidden warning: \S+google\S+: FutureWarning: ", log, re.M)
  assert "Unable to register cuDNN factory" not in cnn_history.killed_stdout


def test_rerun_without_changes_executes_nothing_and_pushes_nothing(cnn_history):
  # The good run pushed one version; its re-run (and the worse run after it) none.
  e2e_helpers.assert_rerun_executed_nothing_and_pushed_nothing(
      cnn_history.rerun, cnn_history.output_dir, "cnn")


def test_corrupted_feature_stops_at_the_validator_with_nothing_pushed(cnn_history, tmp_path):
  output_dir = cnn_history.output_dir

  def corrupt_pixels(example, index):
    if index % 10 == 0:  # Every tenth digit gets a pixel value no image can have.
      example.features.feature["image"].int64_list.value[0] = 4096

  bad_data = e2e_helpers.write_small_slice(MNIST, str(tmp_path / "bad"), N_TRAIN, N_EVAL,
                                           corrupt_pixels)
  serving_dir = e2e_helpers.serving_dir(output_dir, "cnn")
  before = e2e_helpers.pushed_versions(serving_dir)
  assert before
  result = e2e_helpers.run_pipeline(cnn_history.good_args_on(bad_data))
  assert result.returncode == 3, result.stdout + result.stderr
  assert "feature 'image'" in result.stderr
  assert "split 'train'" in result.stderr
  states = e2e_helpers.component_states(result.stdout)
  assert "Transform" not in states and "Trainer" not in states and "Pusher" not in states
  assert e2e_helpers.pushed_versions(serving_dir) == before


def test_train_labels_drifting_from_the_reference_stop_at_the_gate(cnn_history, tmp_path):
  output_dir = cnn_history.output_dir

  def mostly_sevens(example, index):
    if index % 5:  # Four digits in five become 7s: valid values, drifted shares.
      example.features.feature["label"].int64_list.value[:] = [7]

  drifted = e2e_helpers.write_small_slice(MNIST, str(tmp_path / "drifted"), N_TRAIN, N_EVAL,
                                          mostly_sevens)
  serving_dir = e2e_helpers.serving_dir(output_dir, "cnn")
  before = e2e_helpers.pushed_versions(serving_dir)
  assert before
  result = e2e_helpers.run_pipeline(cnn_history.good_args_on(drifted))
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


def _split_records(examples_uri: str, split: str) -> set:
  files = glob.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
  return {r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")}


def _examples_of(store, component: str, event_type) -> "metadata_store_pb2.Artifact":
  """The one Examples artifact a component's first execution (the first
  run's) read or wrote; its execution type is the component class's path."""
  types = {t.id: t.name for t in store.get_execution_types()}
  execution = min((e for e in store.get_executions()
                   if types[e.type_id].endswith(f".{component}")), key=lambda e: e.id)
  ids = [event.artifact_id for event in store.get_events_by_execution_ids([execution.id])
         if event.type == event_type]
  examples_type = store.get_artifact_type("Examples").id
  (examples,) = [a for a in store.get_artifacts_by_id(ids) if a.type_id == examples_type]
  return examples


def test_trainer_never_receives_the_eval_split(cnn_history):
  """ExampleGen carves validation out of train; the Trainer's examples hold
  train and validation only, so nothing it chooses can see eval."""
  data_dir, output_dir = cnn_history.first_span_dir, cnn_history.output_dir
  store = mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(
      OutputLayout(output_dir).metadata_path))
  trained_on = _examples_of(store, "Trainer", metadata_store_pb2.Event.INPUT)
  assert json.loads(trained_on.properties["split_names"].string_value) == [
      "train", "validation"]
  assert sorted(os.listdir(trained_on.uri)) == ["Split-train", "Split-validation"]

  generated = _examples_of(store, "TFRecordExampleGen", metadata_store_pb2.Event.OUTPUT)
  with open(glob.glob(os.path.join(data_dir, "train", "*"))[0], "rb") as f:
    assert f.read(2) == b"\x1f\x8b"  # the shipped slice is GZIP TFRecords
  shipped_train = {r.numpy() for r in tf.data.TFRecordDataset(
      glob.glob(os.path.join(data_dir, "train", "*")), compression_type="GZIP")}
  train, validation = (_split_records(generated.uri, s) for s in ("train", "validation"))
  assert validation and not train & validation
  assert train | validation == shipped_train
  assert all(is_validation_record(record) for record in validation)
  assert not any(is_validation_record(record) for record in train)
  assert _split_records(generated.uri, "eval") == set(TFRECORD.records(data_dir, "eval"))


def _shipped(data_dir: str, split: str) -> set:
  return {r.numpy() for r in tf.data.TFRecordDataset(
      glob.glob(os.path.join(data_dir, split, "*")), compression_type="GZIP")}


def test_a_new_span_is_read_in_its_window_warm_started_and_judged_against_the_served_model(
    cnn_history):
  """Span 2 arrives after a model trained on span 1 is served: the run reads
  spans 1-2, takes eval from span 2 alone, starts training from the served
  model's weights (a quarter of the steps), and the gate compares the
  candidate with the served model on span 2's eval examples."""
  output_dir = cnn_history.next_span_output_dir
  result = cnn_history.next_span
  assert f"on spans 1-2 of {cnn_history.data_dir} (eval from span 2)" in result.stdout
  store = mlmd.MetadataStore(metadata.sqlite_metadata_connection_config(
      OutputLayout(output_dir).metadata_path))
  by_window = {a.custom_properties[WINDOW_SPANS_PROPERTY].string_value: a
               for a in store.get_artifacts_by_type("Examples")}
  # The history's runs on span 1, then this run's window.
  assert sorted(window for window in by_window if window) == ["[1, 2]", "[1]"], by_window
  generated = by_window["[1, 2]"]
  assert generated.properties["span"].int_value == 2
  span_1, span_2 = cnn_history.first_span_dir, cnn_history.second_span_dir
  assert _split_records(generated.uri, "eval") == _shipped(span_2, "eval")
  assert not _shipped(span_1, "eval") & _shipped(span_2, "eval")
  trained = _split_records(generated.uri, "train") | _split_records(generated.uri, "validation")
  assert trained == _shipped(span_1, "train") | _shipped(span_2, "train")
  # The served model was the baseline, on the same span-2 examples.
  assert re.search(r"^\s+sparse_categorical_accuracy\s+[\d.]+\s+baseline [\d.]+\s+diff",
                   result.stdout, re.M), result.stdout
  served_before = e2e_helpers.pushed_versions(
      e2e_helpers.serving_dir(cnn_history.output_dir, "cnn"))
  assert (f"Trained: warm, from served version {served_before[-1]} (trained on span 1)"
          in result.stdout), result.stdout
  log = e2e_helpers.run_log(result.stdout)
  assert (f"Warm start from version {served_before[-1]} under "
          f"{e2e_helpers.serving_dir(output_dir, 'cnn')} (trained on span 1)") in log
  warm_steps = math.ceil(GOOD_STEPS * configs.CNN.warm_start_fraction)
  assert f": {warm_steps} steps instead of {GOOD_STEPS}" in log
  served_after = e2e_helpers.pushed_versions(e2e_helpers.serving_dir(output_dir, "cnn"))
  blessed = "Blessed: yes" in result.stdout
  assert served_after[:len(served_before)] == served_before
  assert len(served_after) == len(served_before) + int(blessed), result.stdout


def test_a_span_breaking_the_schema_stops_naming_the_span_with_nothing_pushed(cnn_history):
  result = cnn_history.broken_span
  assert result.returncode == 3, result.stdout + result.stderr
  assert "the examples of the window ending at span 3 (fix that span's data" in result.stderr
  assert "feature 'image'" in result.stderr
  states = e2e_helpers.component_states(result.stdout)
  assert "Transform" not in states and "Trainer" not in states and "Pusher" not in states
  assert e2e_helpers.pushed_versions(
      e2e_helpers.serving_dir(cnn_history.broken_span_output_dir, "cnn")) == (
          e2e_helpers.pushed_versions(e2e_helpers.serving_dir(cnn_history.output_dir, "cnn")))


def test_a_span_drifting_from_what_the_served_model_learnt_stops_until_a_person_accepts_it(
    cnn_history):
  """Span 3 is mostly 7s in train and eval alike: no skew within its window,
  but its eval examples drifted from the train split the served model
  learnt from (which that version carries). The run stops naming the
  feature, both spans, the distance and the threshold; with --accept-drift
  it trains on it, and the summary and the report say the drift was accepted."""
  serving_dir = e2e_helpers.serving_dir(cnn_history.drifted_span_output_dir, "cnn")
  served = e2e_helpers.pushed_versions(
      e2e_helpers.serving_dir(cnn_history.next_span_output_dir, "cnn"))[-1]
  with open(os.path.join(serving_dir, served, *PUSH_RECORD.split("/"))) as f:
    window = json.load(f)[WINDOW_SPANS_KEY]
  trained_on = f"span {window[0]}" if len(window) == 1 else f"spans {window[0]}-{window[-1]}"
  against = f"the training data of served version {served} ({trained_on})"
  stopped = cnn_history.drifted_span
  assert stopped.returncode == 3, stopped.stdout + stopped.stderr
  assert re.search(
      rf"drift of span 3 \(its eval examples\) from {re.escape(against)}, feature 'label': "
      r"The (approximate )?Jensen-Shannon divergence between current and previous is 0\.\d+ "
      r".*above the "
      r"threshold 0\.1", stopped.stderr), stopped.stderr
  assert "re-run with --accept-drift" in stopped.stderr
  assert "skew" not in stopped.stderr
  states = e2e_helpers.component_states(stopped.stdout)
  assert "Transform" not in states and "Trainer" not in states

  accepted = cnn_history.accepted_drift
  assert accepted.returncode == 0, accepted.stdout + accepted.stderr
  assert f"Drift: ACCEPTED (--accept-drift) from {against}:" in accepted.stdout
  assert "  drift of span 3 (its eval examples)" in accepted.stdout
  assert f"Trained: warm, from served version {served}" in accepted.stdout
  report = e2e_helpers.report_json(accepted.stdout)
  assert report["data_check"]["drift_against"] == against
  assert report["data_check"]["drift_accepted"] is True
  assert report["data_check"]["drift_findings"][0].startswith("drift of span 3")
