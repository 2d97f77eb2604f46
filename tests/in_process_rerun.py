"""A finished run's Beam component, executed again on Beam's in-process runner.

What a run on another Beam engine (Flink) is held against: the component's
own executor, handed the input artifacts and exec properties its execution
recorded in MLMD, on the `direct` preset's runner, its outputs written to
fresh folders. Same code, same inputs, another engine: the outputs must
match.
"""
import importlib
import os
from typing import Dict, List

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.orchestration.portable.mlmd import event_lib, execution_lib
from tfx.types import artifact_utils

from runners import beam_presets


def _store(metadata_path: str) -> metadata_store.MetadataStore:
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
  return metadata_store.MetadataStore(config)


def recorded_execution(metadata_path: str, component_type: str):
  """(input artifacts, output artifacts, exec properties) of the newest
  completed execution of `component_type` (its class path, as MLMD names it)."""
  store = _store(metadata_path)
  executions = [e for e in store.get_executions_by_type(component_type)
                if e.last_known_state == metadata_store_pb2.Execution.COMPLETE]
  assert executions, f"no completed execution of {component_type} in {metadata_path}"
  execution = max(executions, key=lambda e: e.id)
  events = store.get_events_by_execution_ids([execution.id])
  artifacts = store.get_artifacts_by_id({event.artifact_id for event in events})
  artifact_types = {t.id: t for t in store.get_artifact_types_by_id(
      list({a.type_id for a in artifacts}))}
  inputs, outputs = event_lib.reconstruct_inputs_and_outputs(
      [artifact_utils.deserialize_artifact(artifact_types[a.type_id], a) for a in artifacts],
      events)
  exec_properties = {key: getattr(value, value.WhichOneof("value"))
                     for key, value in execution.custom_properties.items()
                     if not execution_lib.is_internal_key(key)}
  return inputs, outputs, exec_properties


def rerun_in_process(metadata_path: str, component_type: str,
                     output_root: str) -> Dict[str, List[types.Artifact]]:
  """Executes the recorded execution of `component_type` again in process;
  returns its outputs (under `output_root`, one folder per output key)."""
  inputs, recorded_outputs, exec_properties = recorded_execution(metadata_path, component_type)
  outputs = {}
  for key, artifacts in recorded_outputs.items():
    outputs[key] = []
    for index, recorded in enumerate(artifacts):
      fresh = artifact_utils.deserialize_artifact(recorded.artifact_type)
      fresh.uri = os.path.join(output_root, key, str(index))
      os.makedirs(fresh.uri, exist_ok=True)
      outputs[key].append(fresh)
  module_path, class_name = component_type.rsplit(".", 1)
  component_class = getattr(importlib.import_module(module_path), class_name)
  context = base_beam_executor.BaseBeamExecutor.Context(
      beam_pipeline_args=list(beam_presets.DIRECT_ARGS),
      tmp_dir=os.path.join(output_root, ".temp") + os.sep, unique_id="in-process-rerun")
  component_class.EXECUTOR_SPEC.executor_class(context).Do(inputs, outputs, exec_properties)
  return outputs
