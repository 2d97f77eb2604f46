"""LSTM TFLite adapter: character ids in, probability out, vocabulary shipped.

A small LSTM trained on real reviews by the session's LSTM pipeline run
(tests/trained_models.py, tests/lstm_run.py) is exported by the real executor
(tests/tflite_testing.py). The app-side tokenisation
(`prepare`, used by the CLI) is checked against the SavedModel's own
Transform graph on real and edge-case texts.
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from components.tflite_exporter import layout
from modules.common import contract
from modules.lstm import features, tflite as lstm_tflite
from pipeline import configs
from tests import tflite_testing, trained_models, tft_testing

DATA = os.path.join(configs.DEFAULT_DATA_ROOT, "reviews")
PARITY_EXAMPLES = 100  # One interpreter call per review (static batch of 1).
# An empty review, characters no review contains, one cut at SEQUENCE_LENGTH,
# and characters TFT keeps out of text vocabularies (newline, CR).
EDGE_TEXTS = ["", "🦄🦖𓀀", "好" * 300, "质量\n很好\r"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, lstm_trained, review_examples):
  """The session's small LSTM (tests/trained_models.py: its pipeline run's,
  40 steps on 1,200 reviews), a copy exported as float32 with parity checked
  on 100 eval reviews."""
  eval_serialized = review_examples["eval"][:PARITY_EXAMPLES]
  work_dir, export_dir = trained_models.copy_of(
      lstm_trained, str(tmp_path_factory.mktemp("lstm_tflite") / "work"))
  artifacts = tflite_testing.as_artifacts(work_dir, export_dir, eval_serialized)
  tflite_dir = tmp_path_factory.mktemp("tflite") / "lstm"
  tflite_testing.run_exporter(artifacts, tflite_dir, "lstm", configs.LSTM.tflite_adapter,
                              parity_examples=PARITY_EXAMPLES)
  signatures = tf.saved_model.load(os.path.join(artifacts["model"], "Format-Serving")).signatures
  return artifacts, os.path.join(tflite_dir, tflite_testing.VERSION), signatures


def _texts(serialized):
  return [tf.train.Example.FromString(record).features.feature[features.TEXT_KEY]
          .bytes_list.value[0].decode("utf-8") for record in serialized]


def _examples(texts):
  return tf.constant([tf.train.Example(features=tf.train.Features(feature={
      features.TEXT_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[text.encode("utf-8")])),
      features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
  })).SerializeToString() for text in texts])


def test_float32_export_ships_the_vocabulary_and_matches_the_savedmodel(exported):
  artifacts, version_dir, _ = exported
  metadata = tflite_testing.assert_ships_vocabulary(
      artifacts, version_dir, features.CHAR_VOCABULARY, lstm_tflite.VOCABULARY_FILE)
  assert [(t["name"], t["shape"], t["dtype"]) for t in metadata["inputs"]] == [
      ("text_xf", [1, features.SEQUENCE_LENGTH], "int64")]
  assert [(t["name"], t["shape"], t["dtype"]) for t in metadata["outputs"]] == [
      ("probability", [1], "float32")]
  tflite_testing.assert_float32_parity_passed(metadata, "auc")
  assert metadata["parity"]["examples"] == PARITY_EXAMPLES
  tflite_testing.assert_no_machine_paths(
      metadata, version_dir, source_model=os.path.join(artifacts["model"], "Format-Serving"),
      serving_model=f"/serving/lstm/{tflite_testing.VERSION}")


def test_embedded_metadata_names_the_vocabulary_and_the_positive_probability(exported):
  _, version_dir, _ = exported
  tensors = tflite_testing.embedded_tensors(version_dir)
  ids, probability = tensors[lstm_tflite.IDS_XF], tensors[features.PROBABILITY]
  assert "character ids" in ids["description"] and ids["content"] == "feature"
  tflite_testing.assert_embeds_file(version_dir, ids, lstm_tflite.VOCABULARY_FILE, "VOCABULARY")
  assert "positive" in probability["description"]
  assert probability["stats"] == {"min": [0.0], "max": [1.0]}
  # The VOCABULARY file type came with metadata schema 1.0.1.
  assert layout.read_metadata(version_dir)["embedded_metadata"]["min_parser_version"] == "1.0.1"


def test_prepare_gives_the_ids_of_the_savedmodels_transform_graph(exported):
  artifacts, version_dir, signatures = exported
  texts = _texts(tft_testing.read_serialized(os.path.join(DATA, "eval", "*"), 20)) + EDGE_TEXTS
  expected = signatures[contract.TRANSFORM_SIGNATURE](examples=_examples(texts))
  prepared = lstm_tflite.ADAPTER.prepare([{"text": t} for t in texts], version_dir)
  np.testing.assert_array_equal(prepared[lstm_tflite.IDS_XF],
                                expected[lstm_tflite.IDS_XF].numpy())


def test_cli_and_litert_predict_text_like_the_savedmodel(exported, tmp_path):
  _, version_dir, signatures = exported
  texts = _texts(tft_testing.read_serialized(os.path.join(DATA, "eval", "*"), 3)) + EDGE_TEXTS
  rows = tflite_testing.run_cli(version_dir, [{"text": t} for t in texts],
                                str(tmp_path / "reviews.json"))
  expected = signatures[contract.RAW_SIGNATURE](
      text=tf.constant([t.encode("utf-8") for t in texts]))[features.PROBABILITY]
  np.testing.assert_allclose([row[features.PROBABILITY] for row in rows],
                             expected.numpy(), atol=1e-4)
  litert = tflite_testing.run_litert(
      version_dir, lstm_tflite.ADAPTER.prepare([{"text": t} for t in texts], version_dir))
  np.testing.assert_allclose(litert[features.PROBABILITY], expected.numpy(), atol=1e-4)


def test_int8_is_refused_before_anything_is_converted(exported, tmp_path):
  artifacts, _, _ = exported
  tflite_testing.assert_int8_refused(artifacts, tmp_path / "lstm", configs.LSTM)
