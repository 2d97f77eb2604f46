"""TFLiteExporter component: spec, output artifact type and constructor.

Runs after the Pusher and exports only what it pushed: the TFLite version
number is the Pusher's `pushed_version`, so an app and TF Serving name the
same model by the same number. Inputs are the Trainer's model, the
Evaluator's blessing, the Pusher's pushed model, Transform's graph (for the
files an adapter ships, such as vocabularies) and ExampleGen's examples:
raw eval examples feed the parity gate, which compares the TFLite model with
the SavedModel's serving signature, and int8 calibration. The output
artifact records whether, where and how the model was exported.
"""
from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.tflite_exporter import executor
from modules.common import contract

DEFAULT_PARITY_EXAMPLES = 200
DEFAULT_REPRESENTATIVE_EXAMPLES = 100


class TFLiteExport(types.Artifact):
  """A TFLite export decision; custom properties: exported (0/1), and when
  exported tflite_destination, tflite_version, quantization, size_bytes,
  parity (the gate's figures, as JSON); when not, reason. The artifact's
  directory holds a copy of metadata.json."""
  # Kubeflow names a custom type `<namespace>.<Title>` and imports that name
  # (tfx_model_factory/__init__.py).
  TYPE_NAME = "tfx_model_factory.TFLiteExport"


class TFLiteExporterSpec(types.ComponentSpec):
  """Inputs, parameters and output of TFLiteExporter."""
  PARAMETERS = {
      executor.FAMILY_KEY: ExecutionParameter(type=str),
      executor.ADAPTER_KEY: ExecutionParameter(type=str),
      executor.TFLITE_DIR_KEY: ExecutionParameter(type=str),
      executor.QUANTIZATION_KEY: ExecutionParameter(type=str),
      executor.PARITY_EXAMPLES_KEY: ExecutionParameter(type=int),
      executor.REPRESENTATIVE_EXAMPLES_KEY: ExecutionParameter(type=int),
  }
  INPUTS = {
      executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      executor.BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
      executor.PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel),
      executor.TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
      executor.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
  }
  OUTPUTS = {executor.EXPORT_KEY: ChannelParameter(type=TFLiteExport)}


class TFLiteExporter(base_component.BaseComponent):
  """Exports the blessed, pushed model to `<tflite_dir>/<pushed_version>/`."""
  SPEC_CLASS = TFLiteExporterSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, *, model: types.BaseChannel, model_blessing: types.BaseChannel,
               pushed_model: types.BaseChannel, transform_graph: types.BaseChannel,
               examples: types.BaseChannel, family: str, adapter: str,
               tflite_dir: str, quantization: str = contract.FLOAT32,
               parity_examples: int = DEFAULT_PARITY_EXAMPLES,
               representative_examples: int = DEFAULT_REPRESENTATIVE_EXAMPLES):
    """Args beyond the channels:

      family: the family's name, for messages and metadata.
      adapter: dotted name of the family's FamilyAdapter (modules/common/contract.py).
      tflite_dir: versions are published under this directory (a local path
        or an object-store URI such as gs://bucket/tflite/<family>).
      quantization: one of contract.QUANTIZATION_MODES.
      parity_examples: eval examples both models must agree on.
      representative_examples: eval examples calibrating int8 (the first of
        the parity examples).
    """
    super().__init__(spec=TFLiteExporterSpec(
        model=model, model_blessing=model_blessing, pushed_model=pushed_model,
        transform_graph=transform_graph, examples=examples,
        family=family, adapter=adapter, tflite_dir=tflite_dir,
        quantization=contract.check_quantization(quantization, contract.load_adapter(adapter)),
        parity_examples=parity_examples,
        representative_examples=representative_examples,
        tflite_export=types.Channel(type=TFLiteExport)))
