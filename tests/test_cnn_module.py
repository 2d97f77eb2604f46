"""CNN family: preprocessing through real tft_beam, and the trained export."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from tensorflow.python.autograph.impl import conversion

from modules.cnn import features, model, preprocessing
from modules.common import contract
from pipeline import configs
from tests import tft_testing

DATA = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
SCHEMA = configs.CNN.schema_path()


@pytest.fixture(scope="module")
def raw_examples():
  return {
      "train": tft_testing.read_serialized(os.path.join(DATA, "train", "*"), 640),
      "eval": tft_testing.read_serialized(os.path.join(DATA, "eval", "*"), 200),
  }


def test_preprocessing_scales_and_reshapes_real_digits(tmp_path, raw_examples):
  schema = tft_testing.load_schema(SCHEMA)
  instances = tft_testing.decode(raw_examples["train"][:8], schema)
  transformed_path = str(tmp_path / "transformed.gz")
  tft_output = tft_testing.analyze_and_transform(
      preprocessing.preprocessing_fn, instances, schema, str(tmp_path / "tft"),
      transformed_path)
  image_key = features.transformed_name(features.IMAGE_KEY)
  transformed = tft_testing.read_transformed(transformed_path, tft_output)
  assert set(transformed) == {image_key, features.LABEL_KEY}
  assert transformed[image_key].shape == (8, 28, 28, 1)
  raw_pixels = np.stack([row["image"] for row in instances])
  raw_labels = np.stack([row["label"] for row in instances]).reshape(-1)
  # Beam may reorder rows: match each transformed image to its raw digit.
  for image, label in zip(transformed[image_key], transformed[features.LABEL_KEY].reshape(-1)):
    matches = np.where(np.all(np.isclose(raw_pixels / 255.0, image.reshape(-1)), axis=1))[0]
    assert len(matches) >= 1, "a transformed image matches no raw digit scaled by 1/255"
    assert label in raw_labels[matches]
  assert transformed[image_key].min() >= 0.0 and transformed[image_key].max() <= 1.0


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory, raw_examples):
  work_dir = str(tmp_path_factory.mktemp("cnn_train"))
  export_dir = tft_testing.train_family_model(
      model.run_fn, preprocessing.preprocessing_fn, SCHEMA,
      raw_examples["train"], raw_examples["eval"], work_dir, train_steps=80)
  return work_dir, export_dir


def test_model_learns_and_writes_tensorboard_logs(exported_model, raw_examples):
  work_dir, export_dir = exported_model
  loaded = tf.saved_model.load(export_dir)
  outputs = loaded.signatures[contract.SERVING_DEFAULT](
      examples=tf.constant(raw_examples["eval"]))
  labels = tft_testing.parse(raw_examples["eval"], tft_testing.load_schema(SCHEMA))["label"]
  accuracy = np.mean(outputs[features.CLASS_ID].numpy() == labels.numpy().reshape(-1))
  assert accuracy > 0.6, f"eval accuracy {accuracy:.3f} after 80 steps (chance is 0.1)"
  event_files = tf.io.gfile.glob(os.path.join(work_dir, "model_run", "**", "events.out.tfevents*"))
  assert event_files, "TensorBoard logs missing from the model run dir"


def test_signatures_accept_their_documented_inputs(exported_model, raw_examples):
  _, export_dir = exported_model
  signatures = tf.saved_model.load(export_dir).signatures
  assert set(signatures) == {contract.SERVING_DEFAULT, contract.RAW_SIGNATURE,
                             contract.TRANSFORM_SIGNATURE}
  serialized = tf.constant(raw_examples["eval"][:5])
  from_examples = signatures[contract.SERVING_DEFAULT](examples=serialized)
  probabilities = from_examples[features.PROBABILITIES].numpy()
  assert probabilities.shape == (5, features.NUM_CLASSES)
  np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

  pixels = tft_testing.parse(raw_examples["eval"][:5], tft_testing.load_schema(SCHEMA))["image"]
  from_raw = signatures[contract.RAW_SIGNATURE](image=pixels)
  np.testing.assert_allclose(from_raw[features.PROBABILITIES].numpy(), probabilities, atol=1e-6)

  transformed = signatures[contract.TRANSFORM_SIGNATURE](examples=serialized)
  image = transformed[features.transformed_name(features.IMAGE_KEY)].numpy()
  np.testing.assert_allclose(image.reshape(5, -1), pixels.numpy() / 255.0, rtol=1e-6)


def test_first_fit_does_not_transpile_tf_keras_but_still_converts_family_code():
  """The shared training module keeps AutoGraph out of tf_keras' own code
  (as TensorFlow does for `keras`): transpiling it cost most of the first
  epoch. Family code keeps its conversion."""
  assert conversion.is_allowlisted(tf_keras.Model.train_step)
  assert conversion.is_allowlisted(tf_keras.layers.RandomTranslation.call)
  assert not conversion.is_allowlisted(model.serve_transformed)
