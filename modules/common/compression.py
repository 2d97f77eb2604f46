"""Model compression for the exports, with TensorFlow Model Optimization.

Pruning: the kernels of a model's convolution and dense layers are wrapped by
`prune_low_magnitude`, whose schedule raises their share of zeros from none
to the target over the training steps (the smallest magnitudes first);
`UpdatePruningStep` advances it each step, and `stripped` removes the
wrappers before export, leaving plain layers whose kernels hold the zeros.
The SavedModel and the TFLite model carry the sparse weights as dense
tensors; their zeros are what compresses (the gzip size of model.tflite).

`prunable` prunes a functional model's convolution and dense kernels
(nearly all of a CNN's weights; batch normalisation is left whole, its few
weights rescale what it normalises); `pruned_layer` wraps any one layer TFMO
can prune (dense kernels, embedding tables), for a subclassed model whose
layers are wrapped one by one.

Quantization-aware training (QAT): after the float training, `quantization_aware`
wraps every layer with TFMO's default 8-bit scheme (fake quantization of
weights and activations, batch normalisation folded as the converter folds
it) and the model is fine-tuned so that it learns to work with int8 values.
The exported SavedModel keeps the wrappers, so what TF Serving returns and
what TFMA gates is the quantized arithmetic, and the TFLite converter turns
the learned ranges into a full-integer model. Layers that only act while
training (augmentation) pass values through unquantized.
"""
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

PRUNED_LAYERS = (tf_keras.layers.Conv2D, tf_keras.layers.Dense)
# Sparsity rises in at least this many steps of the schedule, at most this
# many training steps apart.
_MASK_UPDATES = 10
_MAX_MASK_UPDATE_INTERVAL = 100
# The share of the training steps over which sparsity rises to its target.
PRUNING_SHARE_OF_STEPS = 0.75


def pruning_schedule(final_sparsity: float,
                     train_steps: int) -> tfmot.sparsity.keras.PruningSchedule:
  """Sparsity rising from none to `final_sparsity`, reached after
  PRUNING_SHARE_OF_STEPS of `train_steps`: the rest of the steps train the
  surviving weights with the masks fixed."""
  if not 0.0 < final_sparsity < 1.0:
    raise ValueError(f"final_sparsity must be within (0, 1), got {final_sparsity}")
  end_step = max(1, int(train_steps * PRUNING_SHARE_OF_STEPS))
  # The masks are recomputed every `frequency` steps (TFMO's default, 100,
  # would never prune a short run) and the last time at the end step.
  frequency = max(1, min(_MAX_MASK_UPDATE_INTERVAL, end_step // _MASK_UPDATES))
  return tfmot.sparsity.keras.PolynomialDecay(
      initial_sparsity=0.0, final_sparsity=final_sparsity, begin_step=0,
      end_step=max(frequency, end_step // frequency * frequency), frequency=frequency)


def pruned_layer(layer: tf_keras.layers.Layer, final_sparsity: float,
                 train_steps: int) -> tf_keras.layers.Layer:
  """`layer` (its weights kept) wrapped for pruning on `pruning_schedule`:
  for the layers of a subclassed model, which TFMO cannot wrap whole. The
  wrapper zeroes the layer's own weights, so the layer is what is exported
  once training ends (pruning_callbacks apply the masks at every epoch's end);
  a Sequential model comes back as a Sequential of wrapped layers."""
  return tfmot.sparsity.keras.prune_low_magnitude(
      layer, pruning_schedule=pruning_schedule(final_sparsity, train_steps))


def prunable(model: tf_keras.Model, final_sparsity: float, train_steps: int,
             unpruned: Sequence[str] = ()) -> tf_keras.Model:
  """`model` (functional, uncompiled) with its convolution and dense layers,
  but those named in `unpruned`, wrapped for pruning (`pruned_layer`). The
  weights are kept."""
  schedule = pruning_schedule(final_sparsity, train_steps)

  def wrap(layer):
    if isinstance(layer, PRUNED_LAYERS) and layer.name not in unpruned:
      return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
    return layer

  # The clone reuses `model`'s layers (and so its weights, warm-started or
  # not) inside the wrappers and everywhere else.
  return tf_keras.models.clone_model(model, clone_function=wrap)


def pruning_callbacks() -> List[tf_keras.callbacks.Callback]:
  """What `fit` needs to advance the pruning schedule every step."""
  return [tfmot.sparsity.keras.UpdatePruningStep()]


def stripped(model: tf_keras.Model) -> tf_keras.Model:
  """The pruned model without its pruning wrappers, as it is exported."""
  return tfmot.sparsity.keras.strip_pruning(model)


def kernel_sparsity(model: tf_keras.Model) -> Dict[str, float]:
  """{layer name: share of zeros in its kernel} of the convolution and dense layers."""
  return {layer.name: float(np.mean(layer.kernel.numpy() == 0.0))
          for layer in model.layers if isinstance(layer, PRUNED_LAYERS)}


# Layers that change nothing at inference: under QAT they are neither
# quantized nor given ranges (TFMO has no quantized kernel for them).
TRAINING_ONLY_LAYERS = (tf_keras.layers.RandomTranslation, tf_keras.layers.RandomRotation,
                        tf_keras.layers.RandomZoom, tf_keras.layers.RandomFlip)
# The share of the Trainer's steps spent fine-tuning with fake quantization
# (the rest train the float model), and the fine-tuning's peak learning rate
# as a share of the float training's: the weights only adapt to the int8 grid.
QAT_SHARE_OF_STEPS = 0.2
QAT_LEARNING_RATE_SHARE = 0.1
# The layer TFMO puts in front of a quantization-aware model's first layer;
# its variables name a QAT SavedModel's checkpoint.
_QUANTIZE_INPUT_LAYER = "quantize_layer"


class _PassThrough(tfmot.quantization.keras.QuantizeConfig):
  """Quantizes nothing: for layers that are the identity at inference."""

  def get_weights_and_quantizers(self, layer):
    return []

  def get_activations_and_quantizers(self, layer):
    return []

  def set_quantize_weights(self, layer, quantize_weights):
    pass

  def set_quantize_activations(self, layer, quantize_activations):
    pass

  def get_output_quantizers(self, layer):
    return []

  def get_config(self):
    return {}


class _OutputRanged(_PassThrough):
  """Quantizes a layer's output only, on a range learned as TFMO learns
  activation ranges (a moving average of the batches' min and max)."""

  def get_output_quantizers(self, layer):
    return [tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
        num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]


def quantization_aware(model: tf_keras.Model) -> tf_keras.Model:
  """`model` (functional, uncompiled) with every layer wrapped for
  quantization-aware training; its weights are kept."""
  # The converter folds a batch normalisation into the convolution before
  # it, but into a dense layer only after the dense kernel's fake
  # quantization, which leaves that kernel float: such a batch normalisation
  # is quantized as a layer of its own (its output ranged), not folded.
  after_dense = {layer.name for layer in model.layers
                 if isinstance(layer, tf_keras.layers.BatchNormalization)
                 and isinstance(layer.inbound_nodes[0].inbound_layers, tf_keras.layers.Dense)}

  def annotate(layer):
    config = None
    if isinstance(layer, TRAINING_ONLY_LAYERS):
      config = _PassThrough()
    elif layer.name in after_dense:
      config = _OutputRanged()
    return tfmot.quantization.keras.quantize_annotate_layer(layer, quantize_config=config)

  annotated = tf_keras.models.clone_model(model, clone_function=annotate)
  with tfmot.quantization.keras.quantize_scope({config.__name__: config
                                               for config in (_PassThrough, _OutputRanged)}):
    return tfmot.quantization.keras.quantize_apply(annotated)


def quantization_aware_steps(train_steps: int) -> Tuple[int, int]:
  """(float training steps, fake-quantized fine-tuning steps) of `train_steps`."""
  fine_tune = max(1, math.ceil(train_steps * QAT_SHARE_OF_STEPS))
  return max(0, train_steps - fine_tune), fine_tune


def is_quantization_aware(saved_model_dir: str) -> bool:
  """Whether the SavedModel in `saved_model_dir` was exported from a
  quantization-aware model (its checkpoint holds TFMO's input quantizer)."""
  checkpoint = tf.io.gfile.join(saved_model_dir, "variables", "variables")
  return any(_QUANTIZE_INPUT_LAYER in name for name, _ in tf.train.list_variables(checkpoint))


def copy_float_weights(source: tf_keras.Model, target: tf_keras.Model) -> None:
  """Sets every weighted layer of the float model `target` to the weights
  of its namesake in `source`, a model of the same architecture, plain or
  quantization-aware (where TFMO wraps layer NAME as quant_NAME): a float
  run warm-starts from a QAT export with the float weights it fine-tuned."""
  def short_name(variable):  # "block1_conv0/kernel:0" -> "kernel"
    return variable.name.split("/")[-1].split(":")[0]

  by_name = {candidate.name: candidate for candidate in source.layers}
  for layer in target.layers:
    if not layer.weights:
      continue
    found = by_name.get(layer.name) or by_name.get(f"quant_{layer.name}")
    if found is None:
      raise ValueError(f"{source.name} has no layer {layer.name!r} to start from")
    # A wrapper holds its layer's variables (beside its quantizers' ranges).
    variables = {short_name(variable): variable for variable in found.weights}
    layer.set_weights([variables[short_name(weight)].numpy() for weight in layer.weights])
