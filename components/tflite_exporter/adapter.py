"""What a model family tells the TFLite exporter: the per-family adapter.

Full tf.Example -> Transform graphs do not convert to TFLite builtins
(ParseExample and vocabulary tables need Flex ops), so the TFLite model is a
function over dense, already-transformed features and the mobile app prepares
those features itself. Everything family-specific about that lives in one
adapter object, referenced by dotted name (`FamilyConfig.tflite_adapter`,
e.g. `modules.cnn.tflite.ADAPTER`) so the exporter imports it inside the
pipeline image like `run_fn`:

- `load_model()`: the Trainer's SavedModel as the object `outputs()` uses
  (a Keras model by default; a subclassed model such as the two-tower's may
  rather use tf.saved_model.load and the tf.functions it saved);
- `inputs`: the transformed features the TFLite model takes, per example;
- `batch_size`: None for a dynamic batch, or a static one (LSTMs need it);
- `quantization_modes`: the modes the model converts in, when not all;
- `outputs()`: the function converted, over the loaded model;
- `quality()`: the metric the quantised parity gate compares (accuracy for
  the CNN, AUC for the LSTM, recall@K of a top-K model for the two-tower);
- `parity_request()`: what the SavedModel's `serving_default` is sent for the
  reference outputs (the serialized examples by default; raw user ids for a
  family whose default signature takes those) and any raw columns `quality`
  needs beside the transformed features;
- `preprocessing` and `prepare()`: the documented raw-input rule and its
  implementation, used by the prediction CLI exactly as an app would;
- `extra_files()`: files shipped next to model.tflite (vocabularies, an item
  embedding table), as {file name: source path}.
"""
import abc
import importlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from modules.common import training

Arrays = Dict[str, np.ndarray]
Tensors = Dict[str, tf.Tensor]


class FamilyAdapter(abc.ABC):
  """How one family's blessed model becomes a TFLite model and is fed."""

  # The transformed features the TFLite model takes, in order; shapes exclude
  # the batch dimension, names become the TFLite signature's input names.
  inputs: Tuple[tf.TensorSpec, ...]
  # None: any batch size; an int: converted with that static batch size.
  batch_size: Optional[int] = None
  # None: every quantisation mode; else the modes the family's model survives.
  quantization_modes: Optional[Tuple[str, ...]] = None
  # Name of the metric `quality` computes, as reported in parity figures.
  quality_metric: str
  # {"raw_input": ..., "rule": ...}: how an app turns raw input into `inputs`.
  preprocessing: Dict[str, str]

  def load_model(self, saved_model_dir: str) -> Any:
    """The model `outputs()` is given; the Keras model by default."""
    return tf_keras.models.load_model(saved_model_dir, compile=False)

  @abc.abstractmethod
  def outputs(self, model: Any, features: Tensors) -> Tensors:
    """The TFLite model's named outputs (each named as a `serving_default`
    output, which parity compares it with), from what load_model() gave."""

  @abc.abstractmethod
  def quality(self, eval_batch: Arrays, outputs: Arrays) -> float:
    """The quantised-parity metric of `outputs` on transformed eval examples."""

  @abc.abstractmethod
  def prepare(self, instances: List[Dict[str, Any]], model_dir: str) -> Arrays:
    """Raw instances (as the CLI's JSON gives them) -> batched `inputs`.

    `model_dir` is the exported TFLite version directory, holding any
    `extra_files` (a vocabulary, say) the rule needs.
    """

  def parity_request(self, serialized: tf.Tensor) -> Tuple[Tensors, Arrays]:
    """(`serving_default` inputs, raw columns for `quality`) of raw examples."""
    return {training.EXAMPLES_INPUT: serialized}, {}

  def extra_files(self, model: Any, tft_output: tft.TFTransformOutput) -> Dict[str, str]:
    """{file name: source path} shipped next to model.tflite; none by default."""
    del model, tft_output
    return {}


def read_vocabulary(path: str) -> Dict[str, int]:
  """{entry: line index} of a tf.Transform vocabulary file, as apps read it.

  Lines are split on b"\\n" only, as TensorFlow's lookup tables do (Python's
  splitlines would also split on characters such as U+2028 that are
  vocabulary entries).
  """
  with open(path, "rb") as f:
    lines = f.read().split(b"\n")
  if lines and not lines[-1]:
    lines.pop()
  return {line.decode("utf-8"): index for index, line in enumerate(lines)}


def load_adapter(dotted_name: str) -> FamilyAdapter:
  """Imports `package.module.NAME` and checks it is a FamilyAdapter."""
  module_name, _, attribute = dotted_name.rpartition(".")
  if not module_name:
    raise ValueError(f"TFLite adapter {dotted_name!r} is not a dotted module.NAME")
  adapter = getattr(importlib.import_module(module_name), attribute)
  if not isinstance(adapter, FamilyAdapter):
    raise TypeError(f"TFLite adapter {dotted_name!r} is a {type(adapter).__name__}, "
                    "not a FamilyAdapter")
  return adapter
