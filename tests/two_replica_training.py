"""Trains a family's model on two replicas and on one device, in a fresh
interpreter: TensorFlow splits the CPU into two logical devices only before
it first touches a device, which a test process has long done. Run by
tests/test_distributed_training.py:

  python -m tests.two_replica_training FAMILY WORK_DIR OUTPUT_DIR RESULT_JSON

WORK_DIR is a trained model's of FAMILY (cnn or two_tower;
tests/trained_models.py): its Transform graph and transformed train and
validation files. Both models start from the same seed and train the same
steps on the same global batch with the same learning rate (the two
replicas' `training.for_replicas`); their training losses are recorded
epoch by epoch (12 steps are too few for the CNN's batch-normalisation
moving averages that evaluation uses). For the CNN the two-replica model is
then exported as the Trainer exports it and its `serving_default` called on
raw digits beside the model itself, and its `run_fn` trains on both
replicas, as the Trainer does when its `custom_config` asks for them. The
figures go to RESULT_JSON.
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

from modules.cnn import features as cnn_features, model as cnn_model  # noqa: E402
from modules.common import contract, training  # noqa: E402
from modules.two_tower import catalog as catalog_lib, model as two_tower_model  # noqa: E402
from pipeline import configs  # noqa: E402
from tests import tft_testing  # noqa: E402

STEPS = 12
# Three epochs of four steps: three training losses to compare.
STEPS_PER_EPOCH = 4
EVAL_DIGITS = 64


def _fn_args(work_dir: str, output_dir: str, distribution: str, steps: int = STEPS):
  return tft_testing.fn_args_over(work_dir, output_dir, steps,
                                  {contract.DISTRIBUTION_KEY: distribution})


def _cnn(fn_args, tft_output, learning_rate: float) -> tf_keras.Model:
  del fn_args, tft_output
  return cnn_model.build_model(learning_rate, decay_steps=STEPS)


def _two_tower(fn_args, tft_output, learning_rate: float) -> tf_keras.Model:
  vocabularies = two_tower_model.Vocabularies.of(tft_output)
  catalog = catalog_lib.collect(two_tower_model.one_pass(fn_args, tft_output),
                                vocabularies.users - 1, vocabularies.items - 1,
                                vocabularies.unknown_user_features())
  model = two_tower_model.TwoTowerModel(vocabularies, catalog)
  model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate))
  return model


# family: (its module, building its compiled model, its label key, its
# learning rate on one device)
FAMILIES = {"cnn": (cnn_model, _cnn, cnn_features.LABEL_KEY, cnn_model.LEARNING_RATE),
            "two_tower": (two_tower_model, _two_tower, None,
                          two_tower_model.HPARAMS.learning_rate)}


def _trained(family: str, work_dir: str, output_dir: str, result: dict) -> dict:
  """Trains on one device and on two replicas; {distribution: (fn_args, model)}."""
  module, build, label_key, one_device_rate = FAMILIES[family]
  tft_output = tft.TFTransformOutput(tft_testing.transform_graph_dir(work_dir))
  two_replicas = training.distribution_strategy(
      _fn_args(work_dir, output_dir, contract.DISTRIBUTE_MIRRORED))
  settings, learning_rate = training.for_replicas(module.SETTINGS, one_device_rate,
                                                  two_replicas)
  settings = dataclasses.replace(settings, steps_per_epoch=STEPS_PER_EPOCH)
  result["replicas"] = two_replicas.num_replicas_in_sync
  models = {}
  for distribution in (contract.DISTRIBUTE_NONE, contract.DISTRIBUTE_MIRRORED):
    fn_args = _fn_args(work_dir, os.path.join(output_dir, distribution), distribution)
    strategy = training.distribution_strategy(fn_args)
    tf_keras.utils.set_random_seed(module.SETTINGS.seed)
    with strategy.scope():
      model = build(fn_args, tft_output, learning_rate)
    history = training.fit(fn_args, model, tft_output, label_key, settings)
    result[distribution] = {"replicas": strategy.num_replicas_in_sync,
                            "train_loss": history.history["loss"]}
    models[distribution] = (fn_args, model)
  return models


def _cnn_export(work_dir: str, output_dir: str, models: dict, result: dict) -> None:
  tft_output = tft.TFTransformOutput(tft_testing.transform_graph_dir(work_dir))
  fn_args, model = models[contract.DISTRIBUTE_MIRRORED]
  training.export_serving_model(model, tft_output, fn_args.serving_model_dir,
                                cnn_model.serving_export())
  raw = tft_testing.read_serialized(
      os.path.join(configs.DEFAULT_DATA_ROOT, "mnist", "eval", "*"), EVAL_DIGITS)
  exported = tf.saved_model.load(fn_args.serving_model_dir)
  served = exported.signatures[contract.SERVING_DEFAULT](examples=tf.constant(raw))
  transformed = tft_output.transform_raw_features(
      tft_testing.parse(raw, tft_testing.load_schema(configs.CNN.schema_path())))
  in_memory = cnn_model.serve_transformed(model, transformed)
  result["export_max_abs_diff"] = float(np.max(np.abs(
      served[cnn_features.PROBABILITIES].numpy() - in_memory[cnn_features.PROBABILITIES].numpy())))
  result["signatures"] = sorted(exported.signatures)
  run_fn_args = _fn_args(work_dir, os.path.join(output_dir, "run_fn"),
                         contract.DISTRIBUTE_MIRRORED, steps=4)
  cnn_model.run_fn(run_fn_args)
  result["run_fn_signatures"] = sorted(
      tf.saved_model.load(run_fn_args.serving_model_dir).signatures)


def main(family: str, work_dir: str, output_dir: str, result_path: str) -> None:
  result = {}
  models = _trained(family, work_dir, output_dir, result)
  if family == "cnn":
    _cnn_export(work_dir, output_dir, models, result)
  with open(result_path, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2)


if __name__ == "__main__":
  main(*sys.argv[1:5])
