"""Finds a pipeline's latest evaluation in MLMD, with its blessing, model and report.

"Latest" is the newest live ModelEvaluation artifact of the pipeline: a
cached re-run reuses it, so the latest evaluation is that of the model the
last run evaluated. Its report is the EvaluationReport an EvalReport
execution wrote from it; runs from before the component existed have none.
"""
import dataclasses
from typing import Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts

from components.eval_report.component import EvaluationReport

Artifact = metadata_store_pb2.Artifact
Event = metadata_store_pb2.Event
_OUTPUTS = (Event.OUTPUT, Event.DECLARED_OUTPUT)
_INPUTS = (Event.INPUT, Event.DECLARED_INPUT)


@dataclasses.dataclass(frozen=True)
class LatestEvaluation:
  evaluation: Artifact
  blessing: Optional[Artifact]   # output of the same Evaluator execution
  model: Optional[Artifact]      # the candidate that execution evaluated
  report: Optional[Artifact]     # the newest live EvaluationReport made from it


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


def latest_evaluation(connection_config, pipeline_name: str) -> Optional[LatestEvaluation]:
  """The newest evaluation of `pipeline_name`, or None when it has none."""
  store = metadata_store.MetadataStore(connection_config)
  context = store.get_context_by_type_and_name("pipeline", pipeline_name)
  if context is None:
    return None
  type_names = {t.id: t.name for t in store.get_artifact_types()}
  evaluations = [a for a in store.get_artifacts_by_context(context.id)
                 if type_names.get(a.type_id) == standard_artifacts.ModelEvaluation.TYPE_NAME
                 and a.state == Artifact.LIVE]
  if not evaluations:
    return None
  evaluation = max(evaluations, key=lambda a: a.id)
  events = store.get_events_by_artifact_ids([evaluation.id])
  producer = min(e.execution_id for e in events if e.type in _OUTPUTS)
  produced = _by_key(store, producer, _OUTPUTS)
  consumed = _by_key(store, producer, _INPUTS)
  reports = [a for e in events if e.type in _INPUTS
             for artifacts in _by_key(store, e.execution_id, _OUTPUTS).values()
             for a in artifacts
             if type_names.get(a.type_id) == EvaluationReport.TYPE_NAME
             and a.state == Artifact.LIVE]
  return LatestEvaluation(
      evaluation=evaluation,
      blessing=next(iter(produced.get("blessing", [])), None),
      model=next(iter(consumed.get("model", [])), None),
      report=max(reports, key=lambda a: a.id) if reports else None)
