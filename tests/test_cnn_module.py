"""CNN family: preprocessing through real tft_beam, and the trained export."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tensorflow_model_analysis.metrics import metric_types
from tensorflow.python.autograph.impl import conversion

from modules.cnn import features, model, preprocessing
from modules.cnn import metrics as cnn_metrics
from modules.common import contract, training
from pipeline import configs
from tests import tft_testing

SCHEMA = configs.CNN.schema_path()


@pytest.fixture(scope="module")
def raw_examples(digit_examples):
  """640 train and 200 eval digits (tests/trained_models.py)."""
  return digit_examples


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
def exported_model(cnn_trained):
  """A CNN trained 80 steps on them (tests/trained_models.py, shared with the
  TFLite and prediction CLI tests)."""
  return cnn_trained


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


@pytest.mark.parametrize("refit", [True, False])
def test_refit_trains_on_the_validation_records_too(exported_model, refit):
  """Train files hold only 0s and validation files only 1s: a model refit on
  both learns the 1s; one validated on them never sees a 1 as a target."""
  work_dir, _ = exported_model
  tft_output = tft.TFTransformOutput(tft_testing.transform_graph_dir(work_dir))
  schema = tft_output.transformed_metadata.schema
  image_key = features.transformed_name(features.IMAGE_KEY)
  paths = {}
  for split, digit in (("train", 0), ("validation", 1)):
    batch = tft_testing.read_transformed(
        tft_testing.transformed_examples_path(work_dir, split), tft_output)
    keep = batch[features.LABEL_KEY].reshape(-1) == digit
    rows = [{key: value[i] for key, value in batch.items()} for i in np.flatnonzero(keep)]
    assert len(rows) >= 5, f"too few {digit}s in the {split} slice"
    paths[split] = os.path.join(work_dir, f"only_{digit}s_{refit}", f"{split}.gz")
    tft_testing.write_transformed(rows, schema, paths[split])
  tf_keras.utils.set_random_seed(0)
  inputs = tf_keras.Input((features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1), name=image_key)
  probabilities = tf_keras.layers.Dense(features.NUM_CLASSES, activation="softmax")(
      tf_keras.layers.Flatten()(inputs))
  tiny = tf_keras.Model(inputs, probabilities)
  tiny.compile(optimizer=tf_keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
  fn_args = tft_testing.make_fn_args(os.path.join(work_dir, f"tiny_{refit}"),
                                     tft_testing.transform_graph_dir(work_dir),
                                     [paths["train"]], [paths["validation"]], train_steps=40)
  settings = training.TrainingSettings(batch_size=8, steps_per_epoch=20,
                                       refit_on_validation=refit)
  history = training.fit(fn_args, tiny, tft_output, features.LABEL_KEY, settings)
  ones = tft_testing.read_transformed(paths["validation"], tft_output)[image_key]
  probability_of_one = float(np.mean(tiny.predict(ones, verbose=0)[:, 1]))
  if refit:
    assert "val_loss" not in history.history
    assert probability_of_one > 0.3
  else:
    assert "val_loss" in history.history
    assert probability_of_one < 0.05


def test_refit_cannot_be_combined_with_early_stopping():
  with pytest.raises(ValueError, match="nothing to early-stop on"):
    training.TrainingSettings(refit_on_validation=True, early_stopping_patience=2)


def test_gated_accuracy_counts_what_keras_sparse_categorical_accuracy_does():
  """Same figure as the Keras metric, ties included, whole or merged from
  partitions as TFMA's jackknife merges them."""
  rng = np.random.default_rng(0)
  labels = rng.integers(0, features.NUM_CLASSES, size=300)
  probabilities = rng.dirichlet(np.ones(features.NUM_CLASSES), size=300)
  probabilities[:40] = np.round(probabilities[:40], 1)  # ties between classes
  probabilities[:10] = 0.1  # all ten classes tied: the first one wins
  keras_metric = tf_keras.metrics.SparseCategoricalAccuracy()
  keras_metric.update_state(labels, probabilities)
  hits = cnn_metrics.top_one_hits(labels, {features.PROBABILITIES: probabilities})
  assert np.mean(hits) == pytest.approx(float(keras_metric.result()), abs=1e-7)

  key = metric_types.MetricKey(name=cnn_metrics.NAME)
  combiner = cnn_metrics._TopOneCombiner(key, "", "", example_weighted=False)
  partitions = []
  for part in np.array_split(np.arange(300), 7):
    accumulator = combiner.create_accumulator()
    for i in part:
      accumulator = combiner.add_input(accumulator, metric_types.StandardMetricInputs(
          labels=np.array([labels[i]]), predictions=probabilities[i:i + 1]))
    partitions.append(accumulator)
  merged = combiner.merge_accumulators(partitions)
  assert combiner.extract_output(merged)[key] == pytest.approx(np.mean(hits))
