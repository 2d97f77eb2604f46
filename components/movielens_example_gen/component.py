"""MovieLensExampleGen: an ExampleGen over a MovieLens-format directory, or a
window of spans of one (components/span_example_gen.py).

Every split watches `u.*` (u.data, u.item, u.user) of the directory or of
each span, so the driver's fingerprint, and with it the pipeline cache,
changes when any file does.
"""
from typing import Optional

from tfx.dsl.components.base import executor_spec

from components import spans
from components.carved_splits import input_config
from components.movielens_example_gen import executor
from components.span_example_gen import SpanExampleGen

INPUT_PATTERN = "u.*"


class MovieLensExampleGen(SpanExampleGen):
  """Reads `<input_base>/` u.data, u.item and u.user, or every span's u.data
  and the newest span's u.item and u.user; emits train, validation and eval
  splits (components/carved_splits)."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: str, span_request: Optional[spans.SpanRequest] = None):
    super().__init__(input_base, input_config(INPUT_PATTERN, INPUT_PATTERN), span_request)
