"""Training loop and SavedModel export shared by every model family.

Each family supplies a compiled `tf_keras` model, its raw-input signature and
how to turn model outputs into named serving outputs; everything else (input
pipeline over Transform's output, TensorBoard logs, early stopping, the
tf.Example signatures TF Serving and TFMA call) is done once, here.
"""
import copy
import dataclasses
import math
import os
from typing import Callable, Dict, Optional, Sequence, Tuple

from absl import logging

import numpy as np
import tensorflow as tf
from tensorflow.python.autograph.core import config as autograph_config
from tensorflow.python.autograph.core import config_lib as autograph_config_lib
import tensorflow_transform as tft
import tf_keras
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.public import tfxio

from modules.common import warmup
from modules.common import contract
from modules.common.contract import (EXAMPLES_INPUT, RAW_SIGNATURE, SERVING_DEFAULT,
                                     TRANSFORM_SIGNATURE)

# The outputs a family's serving function returns, keyed by output name.
Outputs = Dict[str, tf.Tensor]
ServeTransformed = Callable[[tf_keras.Model, Dict[str, tf.Tensor]], Outputs]
# Given a function of raw or transformed features, the signature(s) built on it.
SignatureFactory = Callable[[Callable[[Dict[str, tf.Tensor]], Outputs]],
                            tf.types.experimental.GenericFunction]
SignaturesFactory = Callable[[Callable[[Dict[str, tf.Tensor]], Outputs]],
                             Dict[str, tf.types.experimental.GenericFunction]]


def _keep_autograph_out_of_tf_keras() -> None:
  """AutoGraph leaves the `keras` package's own code unconverted (TF 2.16's
  conversion rules) but not `tf_keras`, the same code under another name: the
  first `fit` then transpiles ~400 Keras functions before its first step
  (the CNN's first step: 56-73 s on a busy 2-core machine, 6 s with this rule).
  Families' own layers are still converted, as they are with `keras`."""
  if not any(rule.matches("tf_keras") for rule in autograph_config.CONVERSION_RULES):
    autograph_config.CONVERSION_RULES = (*autograph_config.CONVERSION_RULES,
                                         autograph_config_lib.DoNotConvert("tf_keras"))


_keep_autograph_out_of_tf_keras()


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
  """Per-family knobs of the shared loop; steps come from TFX Train/EvalArgs."""
  batch_size: int = 64
  steps_per_epoch: int = 100
  early_stopping_patience: Optional[int] = None
  early_stopping_monitor: str = "val_loss"
  seed: int = 42
  # For a family whose steps and schedule were chosen on validation ahead of
  # time (no early stopping): fit the shipped model on train + validation
  # with them, as scikit-learn's refit does, so the validation records also
  # train it. The gated eval split still never reaches the Trainer.
  refit_on_validation: bool = False

  def __post_init__(self):
    if self.refit_on_validation and self.early_stopping_patience:
      raise ValueError("refit_on_validation leaves nothing to early-stop on: "
                       "set early_stopping_patience=None or refit_on_validation=False")


def distribution_strategy(fn_args: FnArgs) -> tf.distribute.Strategy:
  """The strategy a family builds, compiles and fits its model in: a
  MirroredStrategy over every GPU the Trainer sees when there is more than
  one (Kubeflow's `--trainer-gpu N`), or over every device when the
  Trainer's custom_config asks for `mirrored` (on a machine without GPUs,
  the CPUs TensorFlow was given as logical devices); else TensorFlow's
  default strategy (one device). Each step then runs on every replica with
  its share of the global batch, and the gradients are summed across them
  before the update, which is the same step as one device on the global
  batch."""
  mode = (fn_args.custom_config or {}).get(contract.DISTRIBUTION_KEY, contract.DISTRIBUTE_AUTO)
  if mode not in contract.DISTRIBUTIONS:
    raise ValueError(f"custom_config {contract.DISTRIBUTION_KEY}={mode!r}: "
                     f"expected one of {contract.DISTRIBUTIONS}")
  gpus = tf.config.list_logical_devices("GPU")
  devices = gpus if mode == contract.DISTRIBUTE_AUTO else (
      gpus or tf.config.list_logical_devices("CPU"))
  if mode == contract.DISTRIBUTE_NONE or len(devices) < 2:
    return tf.distribute.get_strategy()
  logging.info("Training on %d replicas: %s", len(devices), [d.name for d in devices])
  return tf.distribute.MirroredStrategy([device.name for device in devices])


def for_replicas(settings: TrainingSettings, learning_rate: float,
                 strategy: tf.distribute.Strategy) -> Tuple[TrainingSettings, float]:
  """The family's settings and learning rate for `strategy`'s replicas:
  every replica takes the family's batch, so the global batch and, by the
  linear scaling rule (Goyal et al., 2017), the learning rate grow with the
  replica count; the number of steps stays what TrainArgs says, so N
  replicas see N times the examples in the same steps."""
  replicas = strategy.num_replicas_in_sync
  return (dataclasses.replace(settings, batch_size=settings.batch_size * replicas),
          learning_rate * replicas)


def compression_of(fn_args: FnArgs, supported: Sequence[str]) -> str:
  """The compression the Trainer's custom_config asks for (none by
  default); raises naming the ones the family supports otherwise."""
  compression = (fn_args.custom_config or {}).get(contract.COMPRESSION_KEY,
                                                  contract.NO_COMPRESSION)
  if compression not in supported:
    raise ValueError(f"custom_config {contract.COMPRESSION_KEY}={compression!r}: this family "
                     f"takes {', '.join(supported)}")
  return compression


def make_dataset(fn_args: FnArgs, file_pattern,
                 tf_transform_output: tft.TFTransformOutput, label_key: str,
                 batch_size: int, shuffle: bool,
                 num_epochs: Optional[int] = None) -> tf.data.Dataset:
  """Batches of (transformed features, label), repeated `num_epochs` times
  (indefinitely by default)."""
  return fn_args.data_accessor.tf_dataset_factory(
      file_pattern,
      tfxio.TensorFlowDatasetOptions(
          batch_size=batch_size, label_key=label_key, shuffle=shuffle,
          shuffle_seed=0 if shuffle else None, num_epochs=num_epochs),
      tf_transform_output.transformed_metadata.schema)


def fit(fn_args: FnArgs, model: tf_keras.Model,
        tf_transform_output: tft.TFTransformOutput, label_key: str,
        settings: TrainingSettings,
        extra_callbacks: Sequence[tf_keras.callbacks.Callback] = ()
        ) -> tf_keras.callbacks.History:
  """Trains for at most TrainArgs.num_steps, validating on the Trainer's
  eval files: the validation split EvalArgs names (carved from train; the
  pipeline never hands the Trainer the gated eval split). With
  `settings.refit_on_validation` those files train too, and nothing is
  validated (Keras would report training records as validation)."""
  if settings.refit_on_validation:
    train_files = list(fn_args.train_files) + list(fn_args.eval_files)
    validation_ds, validation_steps = None, None
  else:
    train_files = fn_args.train_files
    validation_ds = make_dataset(fn_args, fn_args.eval_files, tf_transform_output,
                                 label_key, settings.batch_size, shuffle=False)
    validation_steps = max(1, fn_args.eval_steps)
  train_ds = make_dataset(fn_args, train_files, tf_transform_output,
                          label_key, settings.batch_size, shuffle=True)
  steps_per_epoch = max(1, min(settings.steps_per_epoch, fn_args.train_steps))
  epochs = max(1, math.ceil(fn_args.train_steps / steps_per_epoch))
  callbacks = [tf_keras.callbacks.TensorBoard(
      log_dir=fn_args.model_run_dir, update_freq="epoch"), *extra_callbacks]
  if settings.early_stopping_patience:
    callbacks.append(tf_keras.callbacks.EarlyStopping(
        monitor=settings.early_stopping_monitor,
        patience=settings.early_stopping_patience, restore_best_weights=True))
  return model.fit(
      train_ds, steps_per_epoch=steps_per_epoch, epochs=epochs,
      validation_data=validation_ds, validation_steps=validation_steps,
      callbacks=callbacks, verbose=2)


@dataclasses.dataclass(frozen=True)
class ServingExport:
  """How one family's model serves: what it tells the shared SavedModel
  export, as its contract.FamilyAdapter tells the TFLite exporter.

  - `label_key`: the raw feature serving requests do not carry ("" if none).
  - `serve_transformed(model, transformed features)`: the named outputs.
  - `raw_signature_factory(predict_raw)`: the `serving_raw` signature, built
    on the `predict_raw` function it is handed (raw features in).
  - `warmup_requests` ({signature: {input: value}}): written as TF Serving
    warmup records; the Pusher replays them before publishing a version.
  - `example_signature`: the name the serialized-tf.Example signature is
    saved under: `serving_default` unless the family serves something else
    as its default (FamilyConfig.eval_signature then names it for TFMA).
  - `extra_signatures(transform_raw)`: given the function from raw to
    transformed features (the attached Transform graph), the family's
    further signatures by name, e.g. its own `serving_default`.
  """
  label_key: str
  serve_transformed: ServeTransformed
  raw_signature_factory: SignatureFactory
  warmup_requests: Dict[str, Dict[str, np.ndarray]]
  example_signature: str = SERVING_DEFAULT
  extra_signatures: Optional[SignaturesFactory] = None


def with_weights_of(model: tf_keras.Model, saved_model_dir: str) -> tf_keras.Model:
  """`model`, freshly built by its family's code, with the weights of the
  SavedModel it was exported as (read from the SavedModel's checkpoint).

  Every weight of `model` must be restored, and with its shape, or this
  raises; the TFLite parity gate catches any other difference. What the
  checkpoint holds beyond the model (the Transform layer) is left alone.
  The model is re-wrapped over the same layers first: a compiled model
  tracks its optimizer, whose variables the export (include_optimizer=False)
  does not hold.
  """
  layers_only = tf_keras.Model(model.inputs, model.outputs, name=model.name)
  layers_only.load_weights(os.path.join(saved_model_dir, "variables", "variables")
                           ).assert_existing_objects_matched().expect_partial()
  return layers_only


def with_train_steps(fn_args: FnArgs, train_steps: int) -> FnArgs:
  """A copy of `fn_args` whose `fit` trains for `train_steps` (one phase of
  a run that trains in several, e.g. float then quantization-aware)."""
  phase = copy.copy(fn_args)
  phase.train_steps = train_steps
  return phase


def warm_start(fn_args: FnArgs) -> Tuple[FnArgs, Optional[str]]:
  """(the Trainer's arguments for this run, the base model to start from).

  Where the Trainer was handed a base model (the model served from an older
  span, components/warm_start.py) and the family warm-starts, the base
  model's SavedModel directory and fn_args with train_steps cut to the
  family's share; otherwise fn_args unchanged and None (train from scratch).
  """
  fraction = float((fn_args.custom_config or {}).get(contract.WARM_START_FRACTION_KEY, 0.0))
  base = fn_args.base_model
  if not fraction or not base or not tf.io.gfile.exists(os.path.join(base, "saved_model.pb")):
    return fn_args, None
  steps = max(1, math.ceil(fn_args.train_steps * fraction))
  logging.info("Warm start from %s: %d steps instead of %d", base, steps, fn_args.train_steps)
  return with_train_steps(fn_args, steps), base


def export_serving_model(model: tf_keras.Model, tf_transform_output: tft.TFTransformOutput,
                         export_dir: str, serving: ServingExport) -> None:
  """Saves `model` with the Transform graph attached and three signatures.

  - `serving_default` (or `serving.example_signature`): serialized tf.Example
    in (TF Serving, TFMA).
  - `serving_raw`: raw feature tensors in (REST `instances` requests).
  - `transform_features`: serialized tf.Example in, transformed features out,
    so TFMA can slice on transformed features.

  Plus the family's `extra_signatures` and TF Serving warmup records.
  """
  model.tft_layer = tf_transform_output.transform_features_layer()
  raw_feature_spec = tf_transform_output.raw_feature_spec()
  serving_feature_spec = {k: v for k, v in raw_feature_spec.items()
                          if k != serving.label_key}

  def predict_raw(raw_features: Dict[str, tf.Tensor]) -> Outputs:
    return serving.serve_transformed(model, model.tft_layer(raw_features))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
  def serve_tf_examples(examples):
    return predict_raw(tf.io.parse_example(examples, serving_feature_spec))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
  def transform_features(examples):
    return model.tft_layer(tf.io.parse_example(examples, raw_feature_spec))

  signatures = {
      serving.example_signature: serve_tf_examples,
      RAW_SIGNATURE: serving.raw_signature_factory(predict_raw),
      TRANSFORM_SIGNATURE: transform_features,
  }
  extra = serving.extra_signatures(model.tft_layer) if serving.extra_signatures else {}
  if set(extra) & set(signatures) or SERVING_DEFAULT not in {*signatures, *extra}:
    raise ValueError(f"signatures {sorted(extra)} must add to {sorted(signatures)} "
                     f"without clashing, and one of them must be {SERVING_DEFAULT!r}")
  signatures.update(extra)
  # Serving never resumes training: without the optimizer's slot variables
  # the SavedModel TF Serving loads (and the Pusher copies) is far smaller.
  # Nor does anything call the model but through its signatures (TF Serving,
  # TFMA, the Pusher's check; the TFLite adapters rebuild the Keras model
  # from code, `with_weights_of`): without Keras' traces of every layer the
  # LSTM's export takes 3.5 s instead of 16 s, and each load 1.4 s, not 6.8 s.
  model.save(export_dir, save_format="tf", signatures=signatures, include_optimizer=False,
             save_traces=False)
  warmup.write_warmup_requests(export_dir, serving.warmup_requests)
