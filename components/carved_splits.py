"""The ExampleGen executors' common ground: data comes as `train` and `eval`,
examples leave as `train`, `validation` and `eval`.

The Trainer makes its choices (early stopping, best weights) on a validation
split carved out of train, never on eval, which only the Evaluator reads. How
validation is carved depends on the data (a hash of each tf.Example; the last
interactions before the eval cut of a time-split log), so each executor does
its own carving. The input config names all three output splits, validation
with the train files' pattern: BaseExampleGenExecutor names the output
splits after the input's, and the driver fingerprints (and the cache
follows) every file a split is made from.
"""
import json
import logging
from typing import Any, Dict, List, Optional

from tfx.components.example_gen import base_example_gen_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact, artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components import span_example_gen, spans
from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT

OUTPUT_SPLITS = (TRAIN_SPLIT, VALIDATION_SPLIT, EVAL_SPLIT)


def input_config(train_pattern: str, eval_pattern: str) -> example_gen_pb2.Input:
  """The three splits, validation read from the train files."""
  patterns = {TRAIN_SPLIT: train_pattern, VALIDATION_SPLIT: train_pattern,
              EVAL_SPLIT: eval_pattern}
  return example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name=split, pattern=patterns[split])
      for split in OUTPUT_SPLITS])


def check_input_splits(exec_properties: Dict[str, Any]) -> None:
  """Refuses an input config whose splits are not OUTPUT_SPLITS."""
  config = example_gen_pb2.Input()
  proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], config)
  names = [split.name for split in config.splits]
  if names != list(OUTPUT_SPLITS):
    raise ValueError(f"this ExampleGen makes exactly the splits {list(OUTPUT_SPLITS)} "
                     f"(input_config from carved_splits.input_config), got {names}")


class CarvedSplitsExecutor(base_example_gen_executor.BaseExampleGenExecutor):
  """GenerateExamplesByBeam returns a PCollection per OUTPUT_SPLITS name,
  read from `self.window` where the input base holds spans (the window of
  them the execution parameters ask for, components/span_example_gen.py)."""

  window: Optional[spans.SpanWindow] = None

  def GetInputSourceToExamplePTransform(self):
    """Unused: the base class would call it once per input split, while
    carving reads the train files once for two splits."""
    raise NotImplementedError("carved-split executors build every split in "
                              "GenerateExamplesByBeam")

  def Do(self, input_dict: Dict[str, List[artifact.Artifact]],
         output_dict: Dict[str, List[artifact.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    check_input_splits(exec_properties)
    # Resolved here as well as by the driver: the Kubeflow target runs no drivers.
    self.window = span_example_gen.resolve_window(exec_properties)
    super().Do(input_dict, output_dict, exec_properties)
    if self.window is not None:
      examples = artifact_utils.get_single_instance(
          output_dict[standard_component_specs.EXAMPLES_KEY])
      examples.span = self.window.newest
      examples.set_string_custom_property(span_example_gen.WINDOW_SPANS_PROPERTY,
                                          json.dumps(list(self.window.spans)))
      logging.info("Read %s of %s; eval examples from span %d.", self.window.describe(),
                   self.window.data_dir, self.window.newest)
