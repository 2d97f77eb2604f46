"""MovieLensExampleGen: a FileBasedExampleGen over a MovieLens-format directory.

Both splits watch `u.*` (u.data and u.item at least), so the driver's
fingerprint, and with it the pipeline cache, changes when either file does.
"""
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.movielens_example_gen import executor
from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT

INPUT_PATTERN = "u.*"


class MovieLensExampleGen(FileBasedExampleGen):
  """Reads `<input_base>/` u.data and u.item; emits `train` and `eval` splits."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: str):
    super().__init__(input_base=input_base, input_config=example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=split, pattern=INPUT_PATTERN)
        for split in (TRAIN_SPLIT, EVAL_SPLIT)]))
