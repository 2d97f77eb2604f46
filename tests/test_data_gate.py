"""AnomaliesGate's checks beyond ExampleValidator: text that is not UTF-8,
train/eval skew and drift (from the curated reference statistics, or a new
span's from what the served model learnt), on real
TFDV statistics of the shipped data, read as each family's ExampleGen reads it
(its example source) and computed as pipeline/reference_statistics.py does."""
import itertools
import json
import os

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv

from components import anomalies_gate, atomic_pusher, publishing
from pipeline import configs, reference_statistics


def _records(family, split, count=None):
  data_dir = os.path.join(configs.DEFAULT_DATA_ROOT, family.data_subdir)
  return list(itertools.islice(family.example_source.records(data_dir, split), count))


def _with_label(records, label, share):
  """`records` with the label of the first `share` of them set to `label`."""
  edited = []
  for index, record in enumerate(records):
    example = tf.train.Example.FromString(record)
    if index < share * len(records):
      example.features.feature["label"].int64_list.value[:] = [label]
    edited.append(example.SerializeToString())
  return edited


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(configs.FAMILIES))
def test_shipped_data_has_up_to_date_reference_no_skew_and_no_drift(name):
  family = configs.get_family(name)
  schema = tfdv.load_schema_text(family.schema_path())
  reference = anomalies_gate.load_reference_statistics(family.reference_statistics_path())
  data_dir = os.path.join(configs.DEFAULT_DATA_ROOT, family.data_subdir)
  records = family.example_source.records_by_split(data_dir, ("train", "eval"))
  train = reference_statistics.compute(records["train"])
  eval_ = reference_statistics.compute(records["eval"])
  # The committed reference is the shipped train split's, rebuilt as documented.
  rebuilt = reference_statistics.compared_features_only(train, schema)
  assert rebuilt.datasets[0].num_examples == reference.datasets[0].num_examples
  assert ({f.path.step[0] for f in rebuilt.datasets[0].features}
          == {f.path.step[0] for f in reference.datasets[0].features} != set())
  assert anomalies_gate.describe_skew(schema, train, eval_) == []
  # Drift is judged on a sample the reference was not built from: the eval
  # split, as if it were a new run's train split, stays within the threshold.
  assert anomalies_gate.describe_drift(schema, eval_, reference, "drift") == []


def test_eval_split_unlike_the_train_split_is_named_as_skew():
  schema = tfdv.load_schema_text(configs.LSTM.schema_path())
  train = reference_statistics.compute(_records(configs.LSTM, "train", 1000))
  # Nine in ten eval reviews negative, where train is balanced.
  eval_ = reference_statistics.compute(_with_label(_records(configs.LSTM, "eval", 500), 0, 0.9))
  problems = anomalies_gate.describe_skew(schema, train, eval_)
  assert len(problems) == 1, problems
  assert problems[0].startswith(
      "skew of the eval split against the train split, feature 'label': ")
  assert "Jensen-Shannon divergence" in problems[0]


def test_train_split_unlike_the_reference_is_named_as_drift():
  schema = tfdv.load_schema_text(configs.CNN.schema_path())
  reference = anomalies_gate.load_reference_statistics(configs.CNN.reference_statistics_path())
  # Train and eval alike (no skew), both mostly 7s: drift only.
  train = reference_statistics.compute(_with_label(_records(configs.CNN, "train", 600), 7, 0.8))
  eval_ = reference_statistics.compute(_with_label(_records(configs.CNN, "eval", 200), 7, 0.8))
  assert anomalies_gate.describe_skew(schema, train, eval_) == []
  against, problems = anomalies_gate.check_drift(
      schema, {"train": train, "eval": eval_}, 0, "", configs.CNN.reference_statistics_path())
  assert against == "the reference statistics"
  assert len(problems) == 1, problems
  assert problems[0].startswith(
      "drift of the train split against the reference statistics, feature 'label': ")


def _serve(serving_dir, clock, window, statistics):
  """Publishes a version as AtomicPusher does for a model trained on
  `window` (no model: the drift check reads the record and statistics)."""
  def assemble(staging):
    path = os.path.join(staging, *atomic_pusher.TRAINING_STATISTICS.split("/"))
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
      f.write(statistics.SerializeToString())

  record = {atomic_pusher.SPAN_KEY: window[-1], atomic_pusher.WINDOW_SPANS_KEY: window}
  return int(publishing.publish(assemble, serving_dir, atomic_pusher.PUSH_RECORD,
                                json.dumps(record).encode(), clock=lambda: clock)[0])


def test_new_span_unlike_what_the_served_model_learnt_is_named_as_drift_with_both_spans(
    tmp_path):
  """The new span (its eval examples) is compared with the train split the
  model served from an older span learnt from, not the reference; the line
  names the feature, both spans, the distance and the threshold."""
  schema = tfdv.load_schema_text(configs.CNN.schema_path())
  served_train = reference_statistics.compute(_records(configs.CNN, "train", 600))
  serving_dir = str(tmp_path / "serving")
  version = _serve(serving_dir, 1700000001, [1, 2], served_train)
  _serve(serving_dir, 1700000002, [2, 3], served_train)  # trained on the run's own span
  new_eval = reference_statistics.compute(_with_label(_records(configs.CNN, "eval", 200), 7, 0.8))
  by_split = {"train": served_train, "eval": new_eval}
  against, problems = anomalies_gate.check_drift(
      schema, by_split, 3, serving_dir, configs.CNN.reference_statistics_path())
  assert against == f"the training data of served version {version} (spans 1-2)"
  assert len(problems) == 1, problems
  assert problems[0].startswith(
      f"drift of span 3 (its eval examples) from {against}, feature 'label': "), problems
  assert "Jensen-Shannon divergence between current and previous is 0." in problems[0]
  assert "above the threshold 0.1" in problems[0]
  # The span's eval like the served training data: nothing to name.
  assert anomalies_gate.check_drift(
      schema, {"train": served_train, "eval": reference_statistics.compute(
          _records(configs.CNN, "eval", 200))}, 3, serving_dir, "") == (against, [])
  # Nothing served from an older span: the reference statistics (or nothing).
  assert anomalies_gate.check_drift(schema, by_split, 1, serving_dir, "") == ("", [])


def test_missing_reference_statistics_name_the_file_and_the_rebuild(tmp_path):
  missing = str(tmp_path / "reference_statistics.pbtxt")
  with pytest.raises(FileNotFoundError, match=rf"^{missing}: .*pipeline\.reference_statistics"):
    anomalies_gate.load_reference_statistics(missing)


def test_text_that_is_not_utf8_is_named_with_split_feature_and_count():
  schema = tfdv.load_schema_text(configs.LSTM.schema_path())
  records = []
  for index, record in enumerate(_records(configs.LSTM, "train", 200)):
    example = tf.train.Example.FromString(record)
    if index in (3, 50):  # GBK bytes of a review read as if they were UTF-8.
      example.features.feature["text"].bytes_list.value[:] = ["质量很好".encode("gbk")]
    records.append(example.SerializeToString())
  problems = anomalies_gate.describe_invalid_utf8(schema, {
      "train": reference_statistics.compute(records),
      "eval": reference_statistics.compute(_records(configs.LSTM, "eval", 100))})
  assert problems == ["split 'train', feature 'text': 2 value(s) are not valid UTF-8 "
                      "(decode the source with its real encoding, or drop them)"]
