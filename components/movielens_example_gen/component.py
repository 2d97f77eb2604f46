"""MovieLensExampleGen: a FileBasedExampleGen over a MovieLens-format directory.

Every split watches `u.*` (u.data, u.item, u.user), so the driver's
fingerprint, and with it the pipeline cache, changes when any file does.
"""
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components.carved_splits import input_config
from components.movielens_example_gen import executor

INPUT_PATTERN = "u.*"


class MovieLensExampleGen(FileBasedExampleGen):
  """Reads `<input_base>/` u.data, u.item and u.user; emits train, validation
  and eval splits (components/carved_splits)."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: str):
    super().__init__(input_base=input_base,
                     input_config=input_config(INPUT_PATTERN, INPUT_PATTERN))
