"""Data in spans: which spans a run reads (components/spans.py), what each
ExampleGen makes of a window of them (train from every span, eval from the
newest alone), what the driver fingerprints (a new span re-runs, the same
one is a cache hit), and the one-line refusals of bad span layouts.

On real shipped digits cut into small spans, and on the shipped synthetic
interaction log cut into spans by time (data/movielens/span_cut.py).
"""
import collections
import glob
import json
import os
import shutil

import pytest
import tensorflow as tf
from tfx.components.example_gen import utils as example_gen_utils
from tfx.utils import proto_utils

from components import (atomic_pusher, example_sources, publishing, span_example_gen,
                        span_resolution, spans)
from components.input_errors import InputDataError
from components.movielens_example_gen import executor as movielens_executor
from components.tfrecord_example_gen.component import TFRecordExampleGen
from data.movielens import anchors, span_cut
from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT
from modules.two_tower import features, movielens
from pipeline import configs
from tests import e2e_helpers, tft_testing

DIGITS = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
SYNTHETIC = os.path.join(configs.DEFAULT_DATA_ROOT, "interactions", "synthetic")
RECORDS_PER_SPLIT = 12  # train and eval records of each digit span


def _span_dirs(root, numbers):
  for number in numbers:
    os.makedirs(root / f"span-{number}", exist_ok=True)
  return str(root)


@pytest.mark.parametrize("present, request_, expected", [
    ((1, 2, 3), spans.SpanRequest(), (3,)),
    ((1, 2, 3), spans.SpanRequest(window=2), (2, 3)),
    ((1, 2, 3), spans.SpanRequest(span=2, window=5), (1, 2)),  # a default window, clipped
    ((4, 5, 6), spans.SpanRequest(span=6, window=3, full_window=True), (4, 5, 6)),
    ((7, 10, 11), spans.SpanRequest(window=2), (10, 11)),
])
def test_window_ends_at_the_requested_or_newest_span(tmp_path, present, request_, expected):
  window = spans.resolve(_span_dirs(tmp_path, present), request_)
  assert window.spans == expected and window.newest == expected[-1]


@pytest.mark.parametrize("present, request_, message", [
    ((1, 2), spans.SpanRequest(span=3), "there is no span 3 (spans present: 1-2); name one"),
    ((2, 3), spans.SpanRequest(window=3, full_window=True),
     "a window of 3 span(s) ending at span 3 needs spans 1-3, but span(s) 1 are missing "
     "(spans present: 2-3); pass --window 2 or less"),
    ((1, 2, 4), spans.SpanRequest(window=2),
     "needs spans 3-4, but span(s) 3 are missing (spans present: 1-2, 4); pass --window 1"),
])
def test_a_window_that_cannot_be_read_is_refused_naming_the_spans(tmp_path, present, request_,
                                                                  message):
  with pytest.raises(InputDataError, match=f"^{tmp_path}: .*") as error:
    spans.resolve(_span_dirs(tmp_path, present), request_)
  assert message in str(error.value)


def test_span_folders_must_be_numbered_and_alone(tmp_path):
  _span_dirs(tmp_path, (1,))
  (tmp_path / "span-latest").mkdir()
  with pytest.raises(InputDataError, match=r"span-latest: a span folder is named span-<number>"):
    spans.resolve(str(tmp_path), None)
  (tmp_path / "span-latest").rmdir()
  (tmp_path / "train").mkdir()
  with pytest.raises(InputDataError, match=r"holds span folders and train beside them"):
    spans.resolve(str(tmp_path), None)


def test_data_without_spans_is_one_dataset_unless_spans_are_asked_for(tmp_path):
  (tmp_path / "train").mkdir()
  assert spans.resolve(str(tmp_path), spans.SpanRequest(window=3)) is None
  with pytest.raises(InputDataError, match="holds no span-<N> folders, so --span and --window"):
    spans.resolve(str(tmp_path), spans.SpanRequest(span=2))


def _write_records(path, records):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for record in records:
      writer.write(record)


@pytest.fixture(scope="module")
def digit_spans(tmp_path_factory):
  """Three spans of real digits: {span: {split: records}}, each record in one span only."""
  root = tmp_path_factory.mktemp("digit-spans")
  train = tft_testing.read_serialized(os.path.join(DIGITS, TRAIN_SPLIT, "*"),
                                      3 * RECORDS_PER_SPLIT)
  evaluation = tft_testing.read_serialized(os.path.join(DIGITS, EVAL_SPLIT, "*"),
                                           3 * RECORDS_PER_SPLIT)
  by_span = {}
  for index, number in enumerate((1, 2, 3)):
    part = slice(index * RECORDS_PER_SPLIT, (index + 1) * RECORDS_PER_SPLIT)
    by_span[number] = {TRAIN_SPLIT: train[part], EVAL_SPLIT: evaluation[part]}
    for split, records in by_span[number].items():
      _write_records(str(root / f"span-{number}" / split / "data.gz"), records)
  return str(root), by_span


def _split_records(examples, split):
  files = glob.glob(os.path.join(examples.uri, f"Split-{split}", "*.gz"))
  return collections.Counter(r.numpy() for r in tf.data.TFRecordDataset(files, "GZIP"))


def test_tfrecord_window_trains_on_its_spans_and_evaluates_on_the_newest(digit_spans, tmp_path):
  data_dir, by_span = digit_spans
  component = TFRecordExampleGen(data_dir, spans.SpanRequest(window=2))
  examples = e2e_helpers.run_example_gen(component, str(tmp_path / "out"))
  trained = _split_records(examples, TRAIN_SPLIT) + _split_records(examples, VALIDATION_SPLIT)
  assert trained == collections.Counter(by_span[2][TRAIN_SPLIT] + by_span[3][TRAIN_SPLIT])
  assert _split_records(examples, EVAL_SPLIT) == collections.Counter(by_span[3][EVAL_SPLIT])
  assert examples.span == 3
  assert examples.get_string_custom_property(span_example_gen.WINDOW_SPANS_PROPERTY) == "[2, 3]"


def test_driver_fingerprints_the_window_so_a_new_span_reruns(digit_spans, tmp_path):
  data_dir = shutil.copytree(digit_spans[0], tmp_path / "data")
  component = TFRecordExampleGen(str(data_dir), spans.SpanRequest(window=2))
  driver = span_example_gen.SpanWindowDriver(metadata_handle=None)

  def resolved():
    properties = {key: proto_utils.proto_to_json(value) if hasattr(value, "DESCRIPTOR")
                  else value for key, value in component.exec_properties.items()}
    return driver.resolve_exec_properties(properties, None, None)

  first, again = resolved(), resolved()
  assert first[example_gen_utils.SPAN_PROPERTY_NAME] == 3
  assert first[example_gen_utils.FINGERPRINT_PROPERTY_NAME] == (
      again[example_gen_utils.FINGERPRINT_PROPERTY_NAME])
  assert "span-2:train/*" in first[example_gen_utils.FINGERPRINT_PROPERTY_NAME]
  assert "span-1:" not in first[example_gen_utils.FINGERPRINT_PROPERTY_NAME]
  shutil.copytree(data_dir / "span-3", data_dir / "span-4")
  newer = resolved()
  assert newer[example_gen_utils.SPAN_PROPERTY_NAME] == 4
  assert newer[example_gen_utils.FINGERPRINT_PROPERTY_NAME] != (
      first[example_gen_utils.FINGERPRINT_PROPERTY_NAME])


def test_kubeflow_span_resolution_hands_the_example_gen_what_its_driver_would(digit_spans,
                                                                             tmp_path):
  """components/span_resolution.py: the resolved span, window and the
  driver's own fingerprint as output parameter files; a newest span behind
  the one a served version was trained on is refused unless it is named."""
  data_dir = shutil.copytree(digit_spans[0], tmp_path / "data")
  component = TFRecordExampleGen(str(data_dir), spans.SpanRequest(window=2))
  input_config = component.exec_properties["input_config"]  # JSON, as the spec holds it
  serving_dir = str(tmp_path / "serving")
  outputs = {name: str(tmp_path / name) for name in ("span", "window", "full", "fingerprint")}

  def resolve(span, window):
    assert span_resolution.main([
        "--input-base", str(data_dir), "--input-config", input_config,
        "--serving-dir", serving_dir, "--span", str(span), "--window", str(window),
        "--default-window", "2", "--span-output", outputs["span"],
        "--window-output", outputs["window"], "--full-window-output", outputs["full"],
        "--fingerprint-output", outputs["fingerprint"]]) == 0
    return {name: open(path, encoding="utf-8").read() for name, path in outputs.items()}

  resolved = resolve(0, 0)
  assert (resolved["span"], resolved["window"], resolved["full"]) == ("3", "2", "1")
  window = spans.SpanWindow(str(data_dir), (2, 3))
  assert resolved["fingerprint"] == span_example_gen.input_fingerprint(
      str(data_dir), input_config, window)
  assert "span-2:train/*" in resolved["fingerprint"]
  assert (resolve(2, 1)["span"], resolve(2, 1)["window"]) == ("2", "1")
  # A version trained on span 3 is served; span 3 goes missing.
  publishing.publish(lambda staging: None, serving_dir, atomic_pusher.PUSH_RECORD,
                     json.dumps({atomic_pusher.SPAN_KEY: 3}).encode())
  shutil.rmtree(data_dir / "span-3")
  with pytest.raises(InputDataError, match=r"its newest span is 2, older than span 3, which "
                     r"version \d+ under .*serving was trained on; pass --span 2"):
    span_resolution.resolve(str(data_dir), serving_dir, 0, 0, 2)
  assert resolve(2, 0)["span"] == "2"


def test_partial_spans_are_refused_naming_the_span_and_file(digit_spans, tmp_path):
  data_dir = shutil.copytree(digit_spans[0], tmp_path / "data")
  shutil.rmtree(data_dir / "span-3" / EVAL_SPLIT)
  with pytest.raises(InputDataError, match=r"span-3/eval: no input files for split 'eval'"):
    example_sources.TFRECORD.check(str(data_dir), spans.SpanRequest(window=2))
  # An older span of the window is only trained on: it needs no eval.
  shutil.rmtree(data_dir / "span-1" / EVAL_SPLIT)
  assert example_sources.TFRECORD.check(str(data_dir), spans.SpanRequest(span=2, window=2))
  shutil.rmtree(data_dir / "span-1" / TRAIN_SPLIT)
  with pytest.raises(InputDataError, match=r"span-1/train: no input files"):
    example_sources.TFRECORD.check(str(data_dir), spans.SpanRequest(span=2, window=2))


@pytest.fixture(scope="module")
def interaction_spans(tmp_path_factory):
  """The shipped synthetic log's first 60 users cut into 60-day spans."""
  source = tmp_path_factory.mktemp("interactions")
  with open(os.path.join(SYNTHETIC, movielens.RATINGS_FILE), "rb") as f:
    rows = [line for line in f if int(line.split(b"\t")[0]) <= 60]
  (source / movielens.RATINGS_FILE).write_bytes(b"".join(rows))
  for name in (movielens.ITEMS_FILE, movielens.USERS_FILE):
    shutil.copyfile(os.path.join(SYNTHETIC, name), source / name)
  output = tmp_path_factory.mktemp("interaction-spans")
  counts = span_cut.cut(str(source), str(output), days=60)
  assert len(counts) >= 3, counts
  return str(output), counts


def _parsed(serialized_counter):
  return [tf.train.Example.FromString(record) for record in serialized_counter.elements()]


def _feature(example, key):
  value = example.features.feature[key]
  return (value.int64_list.value or value.bytes_list.value)[0]


def test_interaction_window_holds_out_the_newest_spans_latest_rows(interaction_spans, tmp_path):
  data_dir, counts = interaction_spans
  request = spans.SpanRequest(window=2)
  window = spans.resolve(data_dir, request)
  examples = e2e_helpers.run_movielens_example_gen(data_dir, str(tmp_path / "out"), request)
  reference = collections.defaultdict(collections.Counter)
  for split, example in movielens_executor.examples_by_split(data_dir, window):
    reference[split][example.SerializeToString(deterministic=True)] += 1
  for split in (TRAIN_SPLIT, VALIDATION_SPLIT, EVAL_SPLIT):
    written = collections.Counter(
        tf.train.Example.FromString(r).SerializeToString(deterministic=True)
        for r in _split_records(examples, split).elements())
    assert written == reference[split] and written, split
  assert sum(sum(reference[s].values()) for s in reference) == sum(
      counts[span] for span in window.spans)
  # Eval: rows of the newest span only, from each user active in it.
  newest_rows = movielens.read_interactions(
      os.path.join(window.directory(window.newest), movielens.RATINGS_FILE),
      movielens.read_items(os.path.join(window.directory(window.newest), movielens.ITEMS_FILE)))
  newest_keys = {(str(r.user_id).encode(), str(r.item_id).encode(), r.timestamp)
                 for r in newest_rows}
  eval_examples = _parsed(reference[EVAL_SPLIT])
  assert {(_feature(e, features.USER_ID), _feature(e, features.ITEM_ID),
           _feature(e, features.TIMESTAMP)) for e in eval_examples} <= newest_keys
  eval_users = {_feature(e, features.USER_ID) for e in eval_examples}
  window_rows = collections.Counter(
      str(r.user_id).encode() for span in window.spans
      for r in movielens.read_interactions(
          os.path.join(window.directory(span), movielens.RATINGS_FILE),
          movielens.read_items(os.path.join(window.directory(window.newest),
                                            movielens.ITEMS_FILE))))
  active = {str(r.user_id).encode() for r in newest_rows}
  assert eval_users == {user for user in active if window_rows[user] >= 3}
  # Nothing a model trains on comes after an eval row of its user.
  last_known = collections.defaultdict(int)
  for example in _parsed(reference[TRAIN_SPLIT]) + _parsed(reference[VALIDATION_SPLIT]):
    user = _feature(example, features.USER_ID)
    last_known[user] = max(last_known[user], _feature(example, features.TIMESTAMP))
  assert all(_feature(e, features.TIMESTAMP) >= last_known[_feature(e, features.USER_ID)]
             for e in eval_examples)


def test_interaction_spans_grow_the_catalogue_and_need_their_interactions(interaction_spans,
                                                                         tmp_path):
  data_dir, counts = interaction_spans
  item_counts = [len(movielens.read_items(os.path.join(data_dir, f"span-{n}",
                                                       movielens.ITEMS_FILE)))
                 for n in sorted(counts)]
  assert item_counts == sorted(item_counts) and item_counts[0] < item_counts[-1]
  copy = shutil.copytree(data_dir, tmp_path / "data")
  (copy / f"span-{min(counts)}" / movielens.ITEMS_FILE).unlink()  # Only the newest's is read.
  assert example_sources.MOVIELENS.check(str(copy), spans.SpanRequest(window=len(counts)))
  (copy / f"span-{min(counts)}" / movielens.RATINGS_FILE).write_bytes(b"")
  with pytest.raises(InputDataError, match=rf"span-{min(counts)}/u.data: empty file"):
    example_sources.MOVIELENS.check(str(copy), spans.SpanRequest(window=len(counts)))


def test_anchors_score_a_window_as_the_pipeline_splits_it(interaction_spans):
  """data/movielens/anchors.py on a window: the held-out rows are the
  pipeline's eval rows (the newest span's latest per user), the rest fits."""
  data_dir, counts = interaction_spans
  window = spans.resolve(data_dir, spans.SpanRequest(window=2, full_window=True))
  interactions, _ = movielens_executor.load_window(window)
  fit, held_out = anchors.split(interactions, "eval", window.newest)
  assert held_out and all(row.span == window.newest for row in held_out)
  eval_examples = list(movielens_executor.split_examples(data_dir, EVAL_SPLIT, window))
  assert sorted((row.user_id, row.item_id, row.timestamp) for row in held_out) == sorted(
      (int(_feature(e, features.USER_ID)), int(_feature(e, features.ITEM_ID)),
       _feature(e, features.TIMESTAMP)) for e in eval_examples)
  assert len(fit) + len(held_out) == sum(counts[span] for span in window.spans)
  result = anchors.compute(data_dir, window=window)
  assert result["spans"] == list(window.spans)
  assert all(0.0 <= value <= 1.0 for value in result["recall_at_10"].values())
