"""Running a TFLite model's signature over a whole batch of inputs, with any interpreter.

The parity gate runs the export under tf.lite.Interpreter (TensorFlow is
loaded there anyway); the prediction CLI, like an app, under LiteRT alone.
Both interpreters give the same signature runner, and both go through this
module, so the static-batch handling (the LSTM converts at batch 1) is the
same in the gate and in every prediction. Imports numpy only.
"""
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from modules.common.contract import Arrays


def batches(inputs: Arrays, size: Optional[int]) -> Iterator[Tuple[Arrays, int]]:
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


def run(runner: Any, inputs: Arrays) -> Arrays:
  """Outputs of a signature runner (`Interpreter.get_signature_runner()`) for
  every row of `inputs`; a static batch is fed in chunks."""
  details = runner.get_input_details()
  static = {int(d["shape_signature"][0]) for d in details.values()} - {-1}
  parts = []
  for batch, rows in batches(inputs, static.pop() if static else None):
    outputs = runner(**{name: batch[name].astype(details[name]["dtype"]) for name in details})
    parts.append({key: value[:rows] for key, value in outputs.items()})
  return _concatenate(parts)
