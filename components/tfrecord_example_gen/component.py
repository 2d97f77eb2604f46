"""TFRecordExampleGen: ImportExampleGen's input, a carved validation split out,
over one dataset or a window of spans (components/span_example_gen.py).

Both input splits are file patterns under input_base, or under each span's
folder (`train/*`, `eval/*`), so the driver's fingerprint, and with it the
pipeline cache, follows them.
"""
from typing import Optional

from tfx.dsl.components.base import executor_spec

from components import spans
from components.carved_splits import input_config
from components.span_example_gen import SpanExampleGen
from components.tfrecord_example_gen import executor
from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT


class TFRecordExampleGen(SpanExampleGen):
  """Reads `train/*` and `eval/*` of `<input_base>` or of each span of its
  window; emits train, validation, eval."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: str, span_request: Optional[spans.SpanRequest] = None):
    super().__init__(input_base, input_config(f"{TRAIN_SPLIT}/*", f"{EVAL_SPLIT}/*"),
                     span_request)
