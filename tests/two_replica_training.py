"""Trains the CNN on two replicas and on one device, in a fresh interpreter:
TensorFlow splits the CPU into two logical devices only before it first
touches a device, which a test process has long done. Run by
tests/test_distributed_training.py:

  python -m tests.two_replica_training WORK_DIR OUTPUT_DIR RESULT_JSON

WORK_DIR is a trained CNN's (tests/trained_models.py: its Transform graph
and transformed train and validation files). Both models start from the
same seed, train the same steps on the same global batch with the same
learning rate (the two replicas' `training.for_replicas`), their training
losses recorded epoch by epoch (12 steps are too few for the batch
normalisation's moving averages that evaluation uses); the two-replica model is exported as the
Trainer exports it and its `serving_default` called on raw digits beside
the model itself. Then the CNN's `run_fn` trains on both replicas, as the
Trainer would with `custom_config` asking for them. The figures go to
RESULT_JSON.
"""
import dataclasses
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# pylint: disable=wrong-import-position
import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras  # noqa: E402

from modules.cnn import features, model as cnn_model  # noqa: E402
from modules.common import contract, training  # noqa: E402
from pipeline import configs  # noqa: E402
from tests import tft_testing  # noqa: E402

STEPS = 12
# Three epochs of four steps: three training losses to compare.
STEPS_PER_EPOCH = 4
EVAL_DIGITS = 64


def _fn_args(work_dir: str, output_dir: str, distribution: str, steps: int = STEPS):
  fn_args = tft_testing.make_fn_args(
      output_dir, tft_testing.transform_graph_dir(work_dir),
      [tft_testing.transformed_examples_path(work_dir, "train")],
      [tft_testing.transformed_examples_path(work_dir, "validation")], steps)
  fn_args.custom_config = {contract.DISTRIBUTION_KEY: distribution}
  return fn_args


def main(work_dir: str, output_dir: str, result_path: str) -> None:
  tft_output = tft.TFTransformOutput(tft_testing.transform_graph_dir(work_dir))
  two_replicas = training.distribution_strategy(
      _fn_args(work_dir, output_dir, contract.DISTRIBUTE_MIRRORED))
  settings, learning_rate = training.for_replicas(cnn_model.SETTINGS, cnn_model.LEARNING_RATE,
                                                  two_replicas)
  settings = dataclasses.replace(settings, steps_per_epoch=STEPS_PER_EPOCH)
  result = {"replicas": two_replicas.num_replicas_in_sync}
  models = {}
  for distribution in (contract.DISTRIBUTE_NONE, contract.DISTRIBUTE_MIRRORED):
    fn_args = _fn_args(work_dir, os.path.join(output_dir, distribution), distribution)
    strategy = training.distribution_strategy(fn_args)
    tf_keras.utils.set_random_seed(cnn_model.SETTINGS.seed)
    with strategy.scope():
      model = cnn_model.build_model(learning_rate, decay_steps=STEPS)
    history = training.fit(fn_args, model, tft_output, features.LABEL_KEY, settings)
    result[distribution] = {"replicas": strategy.num_replicas_in_sync,
                            "train_loss": history.history["loss"]}
    models[distribution] = (fn_args, model)
  fn_args, model = models[contract.DISTRIBUTE_MIRRORED]
  training.export_serving_model(model, tft_output, fn_args.serving_model_dir,
                                cnn_model.serving_export())
  raw = tft_testing.read_serialized(
      os.path.join(configs.DEFAULT_DATA_ROOT, "mnist", "eval", "*"), EVAL_DIGITS)
  served = tf.saved_model.load(fn_args.serving_model_dir).signatures[
      contract.SERVING_DEFAULT](examples=tf.constant(raw))
  transformed = tft_output.transform_raw_features(
      tft_testing.parse(raw, tft_testing.load_schema(configs.CNN.schema_path())))
  in_memory = cnn_model.serve_transformed(model, transformed)
  result["export_max_abs_diff"] = float(np.max(np.abs(
      served[features.PROBABILITIES].numpy() - in_memory[features.PROBABILITIES].numpy())))
  result["signatures"] = sorted(tf.saved_model.load(fn_args.serving_model_dir).signatures)
  run_fn_args = _fn_args(work_dir, os.path.join(output_dir, "run_fn"),
                         contract.DISTRIBUTE_MIRRORED, steps=4)
  cnn_model.run_fn(run_fn_args)
  result["run_fn_signatures"] = sorted(
      tf.saved_model.load(run_fn_args.serving_model_dir).signatures)
  with open(result_path, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)


if __name__ == "__main__":
  main(*sys.argv[1:4])
