"""TFRecordExampleGen: ImportExampleGen's input, a carved validation split out.

Both input splits are file patterns under input_base (`train/*`, `eval/*`),
so the driver's fingerprint, and with it the pipeline cache, follows them.
"""
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from components.carved_splits import input_config
from components.tfrecord_example_gen import executor
from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT


class TFRecordExampleGen(FileBasedExampleGen):
  """Reads `<input_base>/train/*` and `eval/*`; emits train, validation, eval."""

  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, input_base: str):
    super().__init__(input_base=input_base,
                     input_config=input_config(f"{TRAIN_SPLIT}/*", f"{EVAL_SPLIT}/*"))
