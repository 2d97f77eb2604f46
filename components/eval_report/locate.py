"""Finds a pipeline's evaluations in MLMD, each with its blessing, models, push and report.

Every live ModelEvaluation artifact of the pipeline is one evaluation; a
cached re-run reuses it, so the latest evaluation is that of the model the
last run evaluated. Around it, from the lineage MLMD recorded:
  - the Evaluator execution that wrote it: its `blessing` output, its
    `model` (candidate) and `baseline_model` inputs and the EvalConfig it
    was configured with;
  - the Pusher execution that read that blessing: its `pushed_model`
    (pushed version, or why nothing was pushed);
  - the EvaluationReport an EvalReport execution wrote from it (runs from
    before the component existed have none).
Only ml-metadata is imported: the review CLI lists evaluations this way and
must not wait for TFX or TensorFlow to load.
"""
import dataclasses
from typing import Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.eval_report import versions
from components.eval_report.names import (BLESSED_KEY, MODEL_EVALUATION_TYPE_NAME,
                                          REPORT_TYPE_NAME)
from components.push_records import NOT_PUSHED_REASON

Artifact = metadata_store_pb2.Artifact
Event = metadata_store_pb2.Event
_OUTPUTS = (Event.OUTPUT, Event.DECLARED_OUTPUT)
_INPUTS = (Event.INPUT, Event.DECLARED_INPUT)
EVAL_CONFIG_PROPERTY = "eval_config"  # the Evaluator's execution property (TFX)


def _custom(artifact: Optional[Artifact], key: str):
  """A custom property's value (string or int), None when it is not set."""
  if artifact is None or key not in artifact.custom_properties:
    return None
  value = artifact.custom_properties[key]
  return value.string_value if value.HasField("string_value") else value.int_value


@dataclasses.dataclass(frozen=True)
class RecordedEvaluation:
  evaluation: Artifact
  blessing: Optional[Artifact]   # output of the same Evaluator execution
  model: Optional[Artifact]      # the candidate that execution evaluated
  baseline: Optional[Artifact]   # the baseline it compared with (None: first model)
  report: Optional[Artifact]     # the newest live EvaluationReport made from it
  pushed: Optional[Artifact]     # the PushedModel of the Pusher that read the blessing
  eval_config: Optional[str]     # the EvalConfig the Evaluator was given (JSON)

  @property
  def id(self) -> int:
    return self.evaluation.id

  @property
  def created_ms(self) -> int:
    return self.evaluation.create_time_since_epoch

  @property
  def blessed(self) -> bool:
    return _custom(self.blessing, BLESSED_KEY) == 1

  @property
  def push(self) -> Optional[dict]:
    """versions.push_outcome of its Pusher run; None when no Pusher read it."""
    if self.pushed is None:
      return None
    return versions.push_outcome(_custom(self.pushed, versions.PUSHED_KEY) == 1,
                                 _custom(self.pushed, versions.PUSHED_VERSION_KEY) or "",
                                 _custom(self.pushed, versions.PUSHED_DESTINATION_KEY) or "",
                                 _custom(self.pushed, NOT_PUSHED_REASON) or "")


def _by_key(store, execution_id: int, event_types) -> Dict[str, List[Artifact]]:
  """{event path key (e.g. "model"): artifacts} of one execution."""
  events = [e for e in store.get_events_by_execution_ids([execution_id])
            if e.type in event_types]
  artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
  grouped: Dict[str, List[Artifact]] = {}
  for event in events:
    key = event.path.steps[0].key if event.path.steps else ""
    grouped.setdefault(key, []).append(artifacts[event.artifact_id])
  return grouped


def _first(artifacts: List[Artifact]) -> Optional[Artifact]:
  return next(iter(artifacts), None)


def _consumers_outputs(store, artifact: Optional[Artifact]) -> List[Dict[str, List[Artifact]]]:
  """The outputs of every execution that read `artifact`."""
  if artifact is None:
    return []
  return [_by_key(store, e.execution_id, _OUTPUTS)
          for e in store.get_events_by_artifact_ids([artifact.id]) if e.type in _INPUTS]


def _recorded(store, evaluation: Artifact, type_names: Dict[int, str]) -> RecordedEvaluation:
  events = store.get_events_by_artifact_ids([evaluation.id])
  producer = min(e.execution_id for e in events if e.type in _OUTPUTS)
  produced = _by_key(store, producer, _OUTPUTS)
  consumed = _by_key(store, producer, _INPUTS)
  (execution,) = store.get_executions_by_id([producer])
  config = (execution.custom_properties.get(EVAL_CONFIG_PROPERTY)
            or execution.properties.get(EVAL_CONFIG_PROPERTY))
  reports = [a for outputs in _consumers_outputs(store, evaluation)
             for artifacts in outputs.values() for a in artifacts
             if type_names.get(a.type_id) == REPORT_TYPE_NAME
             and a.state == Artifact.LIVE]
  blessing = _first(produced.get("blessing", []))
  pushed = [a for outputs in _consumers_outputs(store, blessing)
            for a in outputs.get("pushed_model", [])]
  return RecordedEvaluation(
      evaluation=evaluation,
      blessing=blessing,
      model=_first(consumed.get("model", [])),
      baseline=_first(consumed.get("baseline_model", [])),
      report=max(reports, key=lambda a: a.id) if reports else None,
      pushed=max(pushed, key=lambda a: a.id) if pushed else None,
      eval_config=config.string_value if config is not None and config.string_value else None)


def read_only_sqlite(path: str) -> metadata_store_pb2.ConnectionConfig:
  """A connection to the local runner's MLMD at `path` that cannot change it."""
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = path
  config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
  return config


def evaluations(connection_config, pipeline_name: str) -> List[RecordedEvaluation]:
  """Every live evaluation of `pipeline_name`, oldest first ([] when none)."""
  store = metadata_store.MetadataStore(connection_config)
  context = store.get_context_by_type_and_name("pipeline", pipeline_name)
  if context is None:
    return []
  type_names = {t.id: t.name for t in store.get_artifact_types()}
  found = sorted((a for a in store.get_artifacts_by_context(context.id)
                  if type_names.get(a.type_id) == MODEL_EVALUATION_TYPE_NAME
                  and a.state == Artifact.LIVE), key=lambda a: a.id)
  return [_recorded(store, evaluation, type_names) for evaluation in found]


def latest_evaluation(connection_config, pipeline_name: str) -> Optional[RecordedEvaluation]:
  """The newest evaluation of `pipeline_name`, or None when it has none."""
  recorded = evaluations(connection_config, pipeline_name)
  return recorded[-1] if recorded else None
