"""End to end: the LSTM pipeline on a small slice of the shipped reviews
(1,200 train / 300 eval, 40 steps; it measured AUC 0.84 against a floor of
0.7), run once for the session (tests/lstm_run.py; the LSTM module and
TFLite tests use its trained model): the model is blessed and pushed to
serving and TFLite under one version, serves tf.Examples and raw text alike,
and TFMA slices the evaluation on the length bucket only the Transform graph
computes."""
import glob
import os

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from modules.lstm import features
from runners.layout import OutputLayout
from tests import e2e_helpers

pytestmark = pytest.mark.e2e


def _eval_texts(data_dir):
  records = tf.data.TFRecordDataset(
      tf.io.gfile.glob(os.path.join(data_dir, "eval", "*")), compression_type="GZIP")
  return [tf.train.Example.FromString(r.numpy()).features.feature[features.TEXT_KEY]
          .bytes_list.value[0] for r in records]


def _length_bucket(text: bytes) -> str:
  length = len(text.decode("utf-8"))
  return features.LENGTH_BUCKET_NAMES[
      sum(length >= bound for bound in features.LENGTH_BUCKET_BOUNDARIES)]


@pytest.fixture(scope="module")
def run(lstm_run):
  """(data dir, output dir, result) of the session's LSTM pipeline run."""
  return lstm_run.data_dir, lstm_run.output_dir, lstm_run.result


def test_blessed_model_is_pushed_to_serving_and_tflite_under_one_version(run):
  _, output_dir, result = run
  e2e_helpers.assert_single_blessed_push(output_dir, "lstm", result.stdout)


def test_pushed_model_serves_examples_and_raw_text_alike(run):
  data_dir, output_dir, _ = run
  e2e_helpers.assert_examples_and_raw_features_serve_alike(
      output_dir, "lstm", data_dir, features.TEXT_KEY)


def test_evaluator_slices_on_the_transformed_length_bucket(run):
  """`length_bucket` exists only as an output of `transform_features`: slices
  on it prove TFMA ran the Transform graph and sliced on what it returned."""
  data_dir, output_dir, _ = run
  uris = glob.glob(os.path.join(OutputLayout(output_dir).pipeline_root, "Evaluator",
                                "evaluation", "*"))
  assert len(uris) == 1, uris
  result = tfma.load_eval_result(uris[0])
  by_slice = dict(result.slicing_metrics)
  overall = by_slice[()][""][""]
  assert e2e_helpers.tfma_point_value(overall["auc"]) > 0.7
  assert "binary_accuracy" in overall
  counts = {key[0][1]: e2e_helpers.tfma_point_value(metrics[""][""]["example_count"])
            for key, metrics in by_slice.items()
            if len(key) == 1 and key[0][0] == features.LENGTH_BUCKET_KEY}
  expected = {}
  for text in _eval_texts(data_dir):
    expected[_length_bucket(text)] = expected.get(_length_bucket(text), 0) + 1
  assert counts == expected
