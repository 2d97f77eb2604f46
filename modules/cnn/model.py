"""CNN digit classifier: the Trainer's `run_fn` for the `cnn` family.

Two conv blocks (conv-BN-ReLU x2, max-pool, dropout), a dense head and
random-translation augmentation (active only while training): with 4,000
training digits augmentation is what lifts eval accuracy above 0.98.
"""
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tfx.components.trainer.fn_args_utils import FnArgs

from modules.cnn import features
from modules.common import compression as compression_lib, contract, training

# Steps, schedule and augmentation predate the validation split; checked on
# it against EMA weights, fewer steps and rotation/zoom (none scored better
# on its 442 digits). The shipped model is refit on train + validation.
SETTINGS = training.TrainingSettings(batch_size=64, steps_per_epoch=125,
                                     refit_on_validation=True)
# Faster-moving batch-norm statistics than Keras' 0.99, so short smoke runs
# (a few hundred steps) already evaluate with usable statistics.
BN_MOMENTUM = 0.9


def _conv_block(x, filters: int, name: str):
  for i in range(2):
    x = tf_keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                               name=f"{name}_conv{i}")(x)
    x = tf_keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{i}")(x)
    x = tf_keras.layers.ReLU(name=f"{name}_relu{i}")(x)
  x = tf_keras.layers.MaxPooling2D(name=f"{name}_pool")(x)
  return tf_keras.layers.Dropout(0.25, name=f"{name}_dropout")(x)


# With `pruning` compression: the share of zeros in every convolution and
# dense kernel at the end of training.
PRUNED_SPARSITY = 0.8
# Adam's peak rate on one device, before the cosine decay.
LEARNING_RATE = 2e-3


def architecture() -> tf_keras.Model:
  """The CNN over the transformed [28, 28, 1] image, uncompiled."""
  image = tf_keras.Input(
      shape=(features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1),
      name=features.transformed_name(features.IMAGE_KEY))
  x = tf_keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant",
                                        name="augment_shift")(image)
  x = _conv_block(x, 32, "block1")
  x = _conv_block(x, 64, "block2")
  x = tf_keras.layers.Flatten(name="flatten")(x)
  x = tf_keras.layers.Dense(128, use_bias=False, name="dense")(x)
  x = tf_keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="dense_bn")(x)
  x = tf_keras.layers.ReLU(name="dense_relu")(x)
  x = tf_keras.layers.Dropout(0.4, name="dense_dropout")(x)
  probabilities = tf_keras.layers.Dense(
      features.NUM_CLASSES, activation="softmax", name=features.PROBABILITIES)(x)
  return tf_keras.Model(image, probabilities, name="cnn_digits")


def compiled(model: tf_keras.Model, learning_rate: float = LEARNING_RATE,
             decay_steps: int = 2000) -> tf_keras.Model:
  """`model` compiled as the CNN trains: Adam on a cosine-decayed rate."""
  schedule = tf_keras.optimizers.schedules.CosineDecay(
      learning_rate, decay_steps=max(1, decay_steps), alpha=0.02)
  model.compile(optimizer=tf_keras.optimizers.Adam(schedule),
                loss="sparse_categorical_crossentropy",
                metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
  return model


def build_model(learning_rate: float = LEARNING_RATE, decay_steps: int = 2000) -> tf_keras.Model:
  """The compiled CNN."""
  return compiled(architecture(), learning_rate, decay_steps)


def serve_transformed(model: tf_keras.Model, transformed) -> training.Outputs:
  """Class probabilities and the predicted class from transformed features."""
  image_key = features.transformed_name(features.IMAGE_KEY)
  probabilities = model({image_key: transformed[image_key]}, training=False)
  return {features.PROBABILITIES: probabilities,
          features.CLASS_ID: tf.argmax(probabilities, axis=-1, output_type=tf.int64)}


def raw_signature(predict_raw):
  """`serving_raw`: a batch of 784 int pixel values (0-255), row-major."""
  @tf.function(input_signature=[
      tf.TensorSpec([None, features.NUM_PIXELS], tf.int64, name=features.IMAGE_KEY)])
  def serve_pixels(image):
    return predict_raw({features.IMAGE_KEY: image})
  return serve_pixels


def warmup_requests():
  """A blank digit, as a tf.Example and as raw pixels."""
  blank = tf.train.Example(features=tf.train.Features(feature={
      features.IMAGE_KEY: tf.train.Feature(
          int64_list=tf.train.Int64List(value=[0] * features.NUM_PIXELS))}))
  return {
      contract.SERVING_DEFAULT: {
          contract.EXAMPLES_INPUT: np.array([blank.SerializeToString()], dtype=object)},
      contract.RAW_SIGNATURE: {
          features.IMAGE_KEY: np.zeros([1, features.NUM_PIXELS], np.int64)},
  }


def run_fn(fn_args: FnArgs) -> None:
  """TFX Trainer entry point (referenced as `modules.cnn.model.run_fn`)."""
  tf_keras.utils.set_random_seed(SETTINGS.seed)
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  fn_args, base_model = training.warm_start(fn_args)
  strategy = training.distribution_strategy(fn_args)
  settings, learning_rate = training.for_replicas(SETTINGS, LEARNING_RATE, strategy)
  compression = training.compression_of(fn_args, features.COMPRESSIONS)
  float_steps, quantized_steps = fn_args.train_steps, 0
  # A quantization-aware base model goes on fine-tuning as it was exported.
  resume_quantized = (compression == contract.QAT and base_model is not None
                      and compression_lib.is_quantization_aware(base_model))
  if resume_quantized:
    float_steps, quantized_steps = 0, fn_args.train_steps
  elif compression == contract.QAT:
    float_steps, quantized_steps = compression_lib.quantization_aware_steps(fn_args.train_steps)
  with strategy.scope():
    model = architecture()
    if base_model and not resume_quantized:
      # No vocabulary: every weight keeps its meaning from span to span.
      compression_lib.copy_float_weights(exported_architecture(base_model), model)
    if compression == contract.PRUNING:
      # The 10-way classifier holds 0.3% of the weights: pruning it saves
      # nothing worth its accuracy.
      model = compression_lib.prunable(model, PRUNED_SPARSITY, float_steps,
                                       unpruned=(features.PROBABILITIES,))
    model = compiled(model, learning_rate, decay_steps=float_steps)
  if float_steps:
    callbacks = compression_lib.pruning_callbacks() if compression == contract.PRUNING else []
    training.fit(training.with_train_steps(fn_args, float_steps), model, tf_transform_output,
                 features.LABEL_KEY, settings, extra_callbacks=callbacks)
  if compression == contract.PRUNING:
    model = compression_lib.stripped(model)
  if quantized_steps:
    with strategy.scope():
      model = compression_lib.quantization_aware(model)
      if resume_quantized:
        training.with_weights_of(model, base_model)
      model = compiled(model, learning_rate * compression_lib.QAT_LEARNING_RATE_SHARE,
                       decay_steps=quantized_steps)
    training.fit(training.with_train_steps(fn_args, quantized_steps), model,
                 tf_transform_output, features.LABEL_KEY, settings)
  training.export_serving_model(model, tf_transform_output, fn_args.serving_model_dir,
                                serving_export())


def exported_architecture(saved_model_dir: str) -> tf_keras.Model:
  """The uncompiled CNN as the SavedModel in `saved_model_dir` was exported:
  quantization-aware or plain (pruning leaves plain layers), with its weights."""
  model = architecture()
  if compression_lib.is_quantization_aware(saved_model_dir):
    model = compression_lib.quantization_aware(model)
  return training.with_weights_of(model, saved_model_dir)


def serving_export() -> training.ServingExport:
  """How the CNN's SavedModel serves (training.export_serving_model)."""
  return training.ServingExport(
      label_key=features.LABEL_KEY, serve_transformed=serve_transformed,
      raw_signature_factory=raw_signature, warmup_requests=warmup_requests())
