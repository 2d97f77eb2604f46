"""The ExampleGen base of this project's sources: a FileBasedExampleGen that
reads a window of spans (components/spans.py).

TFX's `{SPAN}` patterns let one ExampleGen run read one span; a window of
spans is then a resolver's job (RollingRange), and the Kubeflow target runs
no resolvers. Here the ExampleGen reads the window itself, so both
orchestrators train on the same spans: its execution parameters carry the
request (`requested_span`, `window`, `full_window`, which can be runtime
parameters), its executor resolves the window from the directory listing
(components/carved_splits.py), and where the orchestrator runs drivers,
SpanWindowDriver resolves it first and fingerprints exactly the window's
files: a new span changes the fingerprint and the run reads it; the same span
again is a cache hit. The output Examples carry the newest span as their
`span` and the window as `window_spans`.

A subclass of FileBasedExampleGen, so that TFX's Kubeflow compiler builds
its task as it builds every file-based ExampleGen's.
"""
from typing import Any, Dict, Optional

from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec as tfx_executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import channel, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components import spans

# The Examples' custom property listing the spans the run read (JSON: [3, 4, 5]).
WINDOW_SPANS_PROPERTY = "window_spans"


class SpanExampleGenSpec(standard_component_specs.FileBasedExampleGenSpec):
  """FileBasedExampleGen's parameters and a SpanRequest's."""
  PARAMETERS = {
      **standard_component_specs.FileBasedExampleGenSpec.PARAMETERS,
      spans.SPAN_PARAMETER: component_spec.ExecutionParameter(type=int),
      spans.WINDOW_PARAMETER: component_spec.ExecutionParameter(type=int),
      spans.FULL_WINDOW_PARAMETER: component_spec.ExecutionParameter(type=int),
  }


def listdir(path: str):
  """A directory's entry names on any filesystem TFX reads."""
  return [name.rstrip("/") for name in fileio.listdir(path)]


def input_fingerprint(input_base: str, input_config_json: str,
                      window: Optional[spans.SpanWindow]) -> str:
  """The fingerprint of the files a run reads: the window's, span by span and
  pattern by pattern, or (data without spans) FileBasedDriver's own."""
  input_config = example_gen_pb2.Input()
  proto_utils.json_to_proto(input_config_json, input_config)
  if window is None:
    fingerprint, _, _ = example_gen_utils.calculate_splits_fingerprint_span_and_version(
        input_base, input_config.splits)
    return fingerprint
  patterns = sorted({split.pattern for split in input_config.splits})
  return "\n".join(io_utils.generate_fingerprint(f"span-{span}:{pattern}",
                                                 f"{window.directory(span)}/{pattern}")
                   for span in window.spans for pattern in patterns)


def resolve_window(exec_properties: Dict[str, Any]) -> Optional[spans.SpanWindow]:
  """The window the execution parameters ask for, from the input base's listing."""
  return spans.resolve(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                       spans.SpanRequest.from_parameters(exec_properties), listdir)


class SpanWindowDriver(example_gen_driver.FileBasedDriver):
  """Resolves the window and fingerprints the files of its spans; data without
  spans goes through FileBasedDriver unchanged."""

  def resolve_exec_properties(self, exec_properties, pipeline_info, component_info):
    window = resolve_window(exec_properties)
    if window is None:
      return super().resolve_exec_properties(exec_properties, pipeline_info, component_info)
    exec_properties[example_gen_utils.SPAN_PROPERTY_NAME] = window.newest
    exec_properties[example_gen_utils.VERSION_PROPERTY_NAME] = None
    exec_properties[spans.FINGERPRINT_PARAMETER] = input_fingerprint(
        exec_properties[standard_component_specs.INPUT_BASE_KEY],
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], window)
    return exec_properties


class SpanExampleGen(FileBasedExampleGen):
  """A FileBasedExampleGen over a window of spans (or one dataset without spans)."""

  SPEC_CLASS = SpanExampleGenSpec
  DRIVER_CLASS = SpanWindowDriver
  # Subclasses name their executor.
  EXECUTOR_SPEC: tfx_executor_spec.BeamExecutorSpec

  def __init__(self, input_base: str, input_config: example_gen_pb2.Input,
               span_request: Optional[spans.SpanRequest] = None):
    # pylint: disable=non-parent-init-called,super-init-not-called
    # FileBasedExampleGen.__init__ builds its own spec class; this one adds
    # the span request to it.
    request = span_request or spans.SpanRequest()
    spec = SpanExampleGenSpec(
        input_base=input_base,
        input_config=input_config,
        output_config=example_gen_utils.make_default_output_config(input_config),
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        examples=channel.Channel(type=standard_artifacts.Examples),
        **request.as_parameters())
    base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
