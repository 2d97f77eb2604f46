"""What every model family promises the pipeline, and the pipeline the families.

One TF-free module at the bottom of the import graph, so that configs, the
runners' argument checks and the custom components can name a split, a
signature, a quantisation mode or a family's TFLite adapter without importing
TensorFlow, and so that each of those names has exactly one definition:

- split names: what ExampleGen emits, Transform analyses, the Trainer trains
  on and the Evaluator gates on;
- signature and input names of every exported SavedModel (TF Serving and
  TFMA call them);
- `transformed_name`: how Transform names the features the models read;
- the TFLite `FamilyAdapter` contract, its quantisation modes and how an
  adapter is looked up by dotted name (inside the pipeline image, like
  `run_fn`).
"""
import abc
import hashlib
import importlib
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

# Splits, as ExampleGen names them. The data comes as TRAIN_SPLIT and
# EVAL_SPLIT (SPLITS); ExampleGen carves VALIDATION_SPLIT out of train.
# Transform analyses train alone, the Trainer trains on train and makes every
# choice (early stopping, best weights) on validation, and only the Evaluator
# reads eval, the split the gate and every published figure use.
TRAIN_SPLIT = "train"
VALIDATION_SPLIT = "validation"
EVAL_SPLIT = "eval"
SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)
TRAINER_SPLITS = (TRAIN_SPLIT, VALIDATION_SPLIT)
# Share of the train split's tf.Examples that go to validation, by hash.
VALIDATION_PERCENT = 10


def is_validation_record(serialized_example: bytes) -> bool:
  """Whether a train-split tf.Example (its serialized bytes) goes to validation.

  A hash of the bytes, not a random draw: the same examples every run, on
  every runner, without coordination; identical examples land together.
  """
  digest = hashlib.sha256(serialized_example).digest()
  return int.from_bytes(digest[:8], "big") % 100 < VALIDATION_PERCENT

# Signatures of every exported SavedModel and the input they take.
SERVING_DEFAULT = "serving_default"
RAW_SIGNATURE = "serving_raw"
TRANSFORM_SIGNATURE = "transform_features"
# Trainer custom_config key: the share of train_steps a model warm-started
# from the model served from an older span trains (FamilyConfig.warm_start_fraction).
WARM_START_FRACTION_KEY = "warm_start_fraction"
# Trainer custom_config key: how the model is replicated over the Trainer's
# devices (modules/common/training.py, `distribution_strategy`).
DISTRIBUTION_KEY = "distribution"
# On more than one GPU, every GPU (synchronous replicas); else one device.
DISTRIBUTE_AUTO = "auto"
# Every device, also the CPUs TensorFlow was given as logical devices.
DISTRIBUTE_MIRRORED = "mirrored"
# One device, whatever the Trainer has.
DISTRIBUTE_NONE = "none"
DISTRIBUTIONS = (DISTRIBUTE_AUTO, DISTRIBUTE_MIRRORED, DISTRIBUTE_NONE)
# Trainer custom_config key: how the trained model is compressed for its
# exports (modules/common/compression.py).
COMPRESSION_KEY = "compression"
NO_COMPRESSION = "none"
# Magnitude pruning to a target sparsity during training, stripped before export.
PRUNING = "pruning"
# Quantization-aware fine-tuning, converted to a full-integer TFLite model.
QAT = "qat"
COMPRESSIONS = (NO_COMPRESSION, PRUNING, QAT)
EXAMPLES_INPUT = "examples"

# TFLite quantisation modes (components/tflite_exporter/conversion.py).
FLOAT32 = "float32"
DYNAMIC_RANGE = "dynamic_range"
INT8 = "int8"
QUANTIZATION_MODES = (FLOAT32, DYNAMIC_RANGE, INT8)
# The labels of a TFLite output's last axis, one per line, shipped beside and
# inside model.tflite (TensorMeaning.axis_labels).
LABELS_FILE = "labels.txt"

# {name: numpy array} and {name: tf.Tensor}: typed loosely here so this
# module needs neither numpy nor TensorFlow.
Arrays = Dict[str, Any]
Tensors = Dict[str, Any]


def transformed_name(key: str) -> str:
  """The name Transform gives the feature it derives from raw feature `key`."""
  return key + "_xf"


class TensorMeaning(NamedTuple):
  """What an app developer needs to know about one TFLite input or output.

  The exporter writes it into metadata.json and embeds it in model.tflite as
  TFLite Model Metadata (components/tflite_exporter/model_metadata.py), which
  Android Studio's ML Model Binding and the TFLite Task Library read.
  """
  # What the values are and how an app makes or reads them.
  description: str
  # (min, max) of the values the model takes or gives.
  value_range: Optional[Tuple[float, float]] = None
  # Raw input -> tensor value as (raw - mean) / std, when an app scales raw
  # values (pixels) itself: (mean, std).
  normalization: Optional[Tuple[float, float]] = None
  # (height, width) of a greyscale image tensor; None for other tensors.
  grayscale_image_size: Optional[Tuple[int, int]] = None
  # The meaning of each index of the last axis (index i means
  # axis_labels[i]), shipped as LABELS_FILE beside and inside the model.
  axis_labels: Tuple[str, ...] = ()
  # (extra file name, TFLite AssociatedFileType name, description) of shipped
  # files that describe this tensor's values, such as a vocabulary; they are
  # embedded in model.tflite too.
  associated_files: Tuple[Tuple[str, str, str], ...] = ()


class FamilyAdapter(abc.ABC):
  """How one family's blessed model becomes a TFLite model and is fed.

  Full tf.Example -> Transform graphs do not convert to TFLite builtins
  (ParseExample and vocabulary tables need Flex ops), so the TFLite model is a
  function over dense, already-transformed features and the mobile app
  prepares those features itself. Everything family-specific about that lives
  in one adapter object, referenced by dotted name
  (`FamilyConfig.tflite_adapter`, e.g. `modules.cnn.tflite.ADAPTER`):

  - `inputs`: the transformed features the TFLite model takes, per example;
  - `batch_size`: None for a dynamic batch, or a static one (LSTMs need it);
  - `quantization_modes`: the modes the model converts in, when not all;
  - `model_for_conversion()`: what `outputs()` runs, made from the Trainer's
    SavedModel as tf.saved_model.load restores it (loaded once, for the
    conversion and the parity reference both): by default that object itself
    and the tf.functions it saved; a Keras family rebuilds its model from
    code with the SavedModel's weights (the export saves no Keras traces);
  - `outputs()`: the function converted, over that model;
  - `quality()`: the metric the quantised parity gate compares (accuracy for
    the CNN, AUC for the LSTM, recall@K of a top-K model for the two-tower);
  - `parity_request()`: what the SavedModel's `serving_default` is sent for
    the reference outputs (the serialized examples by default; raw user ids
    for a family whose default signature takes those) and any raw columns
    `quality` needs beside the transformed features;
  - `preprocessing` and `app_input`: the documented raw-input rule and the
    dotted name of its implementation, a TF-free function (instances,
    model_dir) -> inputs that metadata.json names, so the prediction CLI and
    Python apps run it beside LiteRT without TensorFlow (`prepare()` calls it);
  - `extra_files()`: files shipped next to model.tflite (vocabularies, an
    item embedding table), as {file name: source path};
  - `title`, `description`, `license` and `tensor_meanings`: what an app
    developer reads about the model and each input and output tensor, in
    metadata.json and embedded in model.tflite.
  """

  # The transformed features the TFLite model takes, in order, as
  # tf.TensorSpecs; shapes exclude the batch dimension, names become the
  # TFLite signature's input names.
  inputs: Tuple[Any, ...]
  # None: any batch size; an int: converted with that static batch size.
  batch_size: Optional[int] = None
  # None: every quantisation mode; else the modes the family's model survives.
  quantization_modes: Optional[Tuple[str, ...]] = None
  # Name of the metric `quality` computes, as reported in parity figures.
  quality_metric: str
  # {"raw_input": ..., "rule": ...}: how an app turns raw input into `inputs`.
  preprocessing: Dict[str, str]
  # Dotted name of the TF-free function implementing `preprocessing`'s rule.
  app_input: str
  # The model's display name, what it does, and the terms its weights come
  # under (they derive from the training data, whose licence matters).
  title: str
  description: str
  license: str
  # {name: TensorMeaning} of every TFLite input and output.
  tensor_meanings: Dict[str, TensorMeaning]

  def model_for_conversion(self, saved_model: Any, saved_model_dir: str,
                           tft_output: Any) -> Any:
    """The model `outputs()` is given: the restored SavedModel by default.
    `saved_model_dir` is where it was loaded from, `tft_output` the run's
    tft.TFTransformOutput."""
    del saved_model_dir, tft_output
    return saved_model

  @abc.abstractmethod
  def outputs(self, model: Any, features: Tensors) -> Tensors:
    """The TFLite model's named outputs (each named as a `serving_default`
    output, which parity compares it with), from model_for_conversion()."""

  @abc.abstractmethod
  def quality(self, eval_batch: Arrays, outputs: Arrays) -> float:
    """The quantised-parity metric of `outputs` on transformed eval examples."""

  def prepare(self, instances: List[Dict[str, Any]], model_dir: str) -> Arrays:
    """Raw instances (as the CLI's JSON gives them) -> batched `inputs`, by `app_input`.

    `model_dir` is the exported TFLite version directory, holding any
    `extra_files` (a vocabulary, say) the rule needs.
    """
    return load_function(self.app_input)(instances, model_dir)

  def parity_request(self, serialized: Any) -> Tuple[Tensors, Arrays]:
    """(`serving_default` inputs, raw columns for `quality`) of raw examples
    (`serialized`: a string tensor of serialized tf.Examples)."""
    return {EXAMPLES_INPUT: serialized}, {}

  def extra_files(self, tft_output: Any) -> Dict[str, str]:
    """{file name: source path} shipped next to model.tflite; none by default.
    `tft_output` is the run's tft.TFTransformOutput."""
    del tft_output
    return {}


def check_quantization(mode: str, adapter: FamilyAdapter) -> str:
  """Returns `mode` when it is known and `adapter`'s model supports it, else raises."""
  if mode not in QUANTIZATION_MODES:
    raise ValueError(f"unknown TFLite quantization {mode!r}; "
                     f"choose one of {', '.join(QUANTIZATION_MODES)}")
  if adapter.quantization_modes is not None and mode not in adapter.quantization_modes:
    raise ValueError(f"TFLite quantization {mode!r} is not supported by "
                     f"{type(adapter).__name__}; it supports "
                     f"{', '.join(adapter.quantization_modes)}")
  return mode


def read_vocabulary(path: str) -> Dict[str, int]:
  """{entry: line index} of a tf.Transform vocabulary file, as apps read it.

  Lines are split on b"\\n" only, as TensorFlow's lookup tables do (Python's
  splitlines would also split on characters such as U+2028 that are
  vocabulary entries).
  """
  with open(path, "rb") as f:
    lines: Sequence[bytes] = f.read().split(b"\n")
  if lines and not lines[-1]:
    lines = lines[:-1]
  return {line.decode("utf-8"): index for index, line in enumerate(lines)}


def load_function(dotted_name: str) -> Any:
  """Imports `package.module.NAME` and returns NAME."""
  module_name, _, attribute = dotted_name.rpartition(".")
  if not module_name:
    raise ValueError(f"{dotted_name!r} is not a dotted module.NAME")
  return getattr(importlib.import_module(module_name), attribute)


def load_adapter(dotted_name: str) -> FamilyAdapter:
  """Imports `package.module.NAME` and checks it is a FamilyAdapter."""
  adapter = load_function(dotted_name)
  if not isinstance(adapter, FamilyAdapter):
    raise TypeError(f"TFLite adapter {dotted_name!r} is a {type(adapter).__name__}, "
                    "not a FamilyAdapter")
  return adapter
