"""Converting a family's dense-input function to TFLite, and running the result.

The converted function is built from the adapter: its inputs are the
adapter's transformed features (with a dynamic or static batch dimension),
its outputs whatever the adapter's `outputs()` returns. Three modes:

- `float32`: no optimisation; outputs match the SavedModel to float noise.
- `dynamic_range`: int8 weights, float activations (about 4x smaller).
- `int8`: int8 weights and activations, calibrated on a representative
  dataset; every op must have an int8 kernel (TFLITE_BUILTINS_INT8), so a
  model that cannot be fully quantised fails to convert instead of silently
  keeping float ops. Input and output tensors keep their types (float ones
  are quantised and dequantised at the edges), so apps feed the same tensors
  in every mode.
"""
from typing import Any, Dict, List, Optional

import numpy as np
import tensorflow as tf

from components.tflite_exporter import runtime
from modules.common.contract import FLOAT32, INT8, Arrays, FamilyAdapter


def serving_function(adapter: FamilyAdapter, model: Any):
  """The concrete function converted: adapter inputs -> adapter outputs."""
  names = [spec.name for spec in adapter.inputs]
  signature = [tf.TensorSpec([adapter.batch_size, *spec.shape], spec.dtype, name=spec.name)
               for spec in adapter.inputs]

  @tf.function(input_signature=signature)
  def serve(*features):
    return adapter.outputs(model, dict(zip(names, features)))
  return serve.get_concrete_function()


def _captured_variables(function) -> tf.Module:
  """What the converter saves beside `function`: the variables it captures.

  The converter writes `function` with this object as a SavedModel before
  converting it. Handing it the Keras model instead re-traces and saves every
  layer's call functions: 25 of the LSTM's 27 s of conversion, for the same
  flatbuffer byte for byte.
  """
  holder = tf.Module()
  holder.captured_variables = list(function.variables)
  return holder


def convert(function, mode: str, representative: Arrays, batch_size: Optional[int]) -> bytes:
  """The TFLite flatbuffer of `function` (`mode` checked by contract.check_quantization);
  `representative` calibrates int8."""
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [function], _captured_variables(function))
  if mode != FLOAT32:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if mode == INT8:
    names = [spec.name for spec in function.structured_input_signature[0]]

    def representative_dataset():
      for batch, _ in runtime.batches(representative, batch_size or 1):
        yield [batch[name] for name in names]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  return converter.convert()


def _runner(model_bytes: bytes):
  return tf.lite.Interpreter(model_content=model_bytes).get_signature_runner()


def run_tflite(model_bytes: bytes, inputs: Arrays) -> Arrays:
  """Outputs of tf.lite's interpreter for every row (runtime.run)."""
  return runtime.run(_runner(model_bytes), inputs)


def _dtype_name(dtype: np.dtype) -> str:
  """numpy's name, except "string" for TFLite string tensors (numpy: bytes)."""
  return "string" if dtype.kind in "SO" else dtype.name


def describe(model_bytes: bytes) -> Dict[str, List[Dict[str, Any]]]:
  """Names, shapes (-1: any size) and dtypes of the model's inputs and outputs."""
  runner = _runner(model_bytes)

  def tensors(details):
    return [{"name": name, "shape": [int(d) for d in detail["shape_signature"]],
             "dtype": _dtype_name(np.dtype(detail["dtype"]))}
            for name, detail in sorted(details.items())]
  return {"inputs": tensors(runner.get_input_details()),
          "outputs": tensors(runner.get_output_details())}
