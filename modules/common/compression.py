"""Model compression for the exports, with TensorFlow Model Optimization.

Pruning: the kernels of a model's convolution and dense layers are wrapped by
`prune_low_magnitude`, whose schedule raises their share of zeros from none
to the target over the training steps (the smallest magnitudes first);
`UpdatePruningStep` advances it each step, and `stripped` removes the
wrappers before export, leaving plain layers whose kernels hold the zeros.
The SavedModel and the TFLite model carry the sparse weights as dense
tensors; their zeros are what compresses (the gzip size of model.tflite).

Only convolution and dense kernels are pruned: they hold nearly all of a
CNN's weights, and pruning what normalises or embeds (batch normalisation,
embeddings indexed by id) would change what the model computes, not how
compactly.
"""
from typing import Dict, List, Sequence

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras

PRUNED_LAYERS = (tf_keras.layers.Conv2D, tf_keras.layers.Dense)
# Sparsity rises in at least this many steps of the schedule, at most this
# many training steps apart.
_MASK_UPDATES = 10
_MAX_MASK_UPDATE_INTERVAL = 100
# The share of the training steps over which sparsity rises to its target.
PRUNING_SHARE_OF_STEPS = 0.75


def prunable(model: tf_keras.Model, final_sparsity: float, train_steps: int,
             unpruned: Sequence[str] = ()) -> tf_keras.Model:
  """`model` (uncompiled) with its convolution and dense layers, but those
  named in `unpruned`, wrapped for pruning to `final_sparsity`, reached
  after PRUNING_SHARE_OF_STEPS of `train_steps`: the rest of the steps train
  the surviving weights with the masks fixed. The weights are kept."""
  if not 0.0 < final_sparsity < 1.0:
    raise ValueError(f"final_sparsity must be within (0, 1), got {final_sparsity}")
  end_step = max(1, int(train_steps * PRUNING_SHARE_OF_STEPS))
  # The masks are recomputed every `frequency` steps (TFMO's default, 100,
  # would never prune a short run) and the last time at the end step.
  frequency = max(1, min(_MAX_MASK_UPDATE_INTERVAL, end_step // _MASK_UPDATES))
  schedule = tfmot.sparsity.keras.PolynomialDecay(
      initial_sparsity=0.0, final_sparsity=final_sparsity, begin_step=0,
      end_step=max(frequency, end_step // frequency * frequency), frequency=frequency)

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
