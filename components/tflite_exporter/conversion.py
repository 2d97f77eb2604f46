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
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import tensorflow as tf

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


def _batches(inputs: Arrays, size: Optional[int]) -> Iterator[Tuple[Arrays, int]]:
  """(batch, real rows) pairs: all rows at once for a dynamic batch, else
  chunks of `size` with the last one padded by repeating its final row."""
  count = len(next(iter(inputs.values())))
  step = size or count
  for start in range(0, count, step):
    chunk = {name: value[start:start + step] for name, value in inputs.items()}
    rows = min(step, count - start)
    if rows < step:
      chunk = {name: np.concatenate([value, np.repeat(value[-1:], step - rows, axis=0)])
               for name, value in chunk.items()}
    yield chunk, rows


def _concatenate(parts: List[Arrays]) -> Arrays:
  return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


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
      for batch, _ in _batches(representative, batch_size or 1):
        yield [batch[name] for name in names]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
  return converter.convert()


def _runner(model_bytes: bytes):
  return tf.lite.Interpreter(model_content=model_bytes).get_signature_runner()


def run_tflite(model_bytes: bytes, inputs: Arrays) -> Arrays:
  """Outputs of the TFLite interpreter; a static batch is fed in chunks."""
  runner = _runner(model_bytes)
  details = runner.get_input_details()
  static = {int(d["shape_signature"][0]) for d in details.values()} - {-1}
  parts = []
  for batch, rows in _batches(inputs, static.pop() if static else None):
    outputs = runner(**{name: batch[name].astype(details[name]["dtype"]) for name in details})
    parts.append({key: value[:rows] for key, value in outputs.items()})
  return _concatenate(parts)


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
