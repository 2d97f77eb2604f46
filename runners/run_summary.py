"""What a local run did: live component progress and the closing summary.

Progress comes from the log records TFX's LocalDagRunner and launcher emit;
the summary is read back from MLMD and from the Evaluator's TFMA output (read
and worded by components/eval_report, as the report and the review CLI do),
so it reports what was recorded, not what the runner believes happened.
"""
import dataclasses
import logging
import re
import time
from typing import Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.compiler import constants

_RUNNING = re.compile(r"Component (\S+) is running\.")
_FINISHED = re.compile(r"Component (\S+) is finished\.")
_CACHED = re.compile(r"A cached execution \d+ is used\.")


class ProgressPrinter(logging.Handler):
  """Prints one line when each component starts and one when it finishes."""

  def __init__(self, stream, resolver_ids=frozenset()):
    super().__init__(level=logging.INFO)
    self._stream = stream
    self._resolver_ids = resolver_ids
    self._started: Dict[str, float] = {}
    self._cached: Dict[str, bool] = {}
    self._current: Optional[str] = None

  def emit(self, record: logging.LogRecord) -> None:
    message = record.getMessage()
    if match := _RUNNING.match(message):
      self._current = match.group(1)
      self._started[self._current] = time.monotonic()
      self._print(f"-> {self._current} started")
    elif _CACHED.match(message) and self._current:
      self._cached[self._current] = True
    elif match := _FINISHED.match(message):
      node = match.group(1)
      seconds = time.monotonic() - self._started.get(node, time.monotonic())
      how = ("resolved" if node in self._resolver_ids
             else "cached" if self._cached.get(node) else "executed")
      self._print(f"<- {node} finished in {seconds:.1f} s ({how})")

  def _print(self, line: str) -> None:
    self._stream.write(line + "\n")
    self._stream.flush()


@dataclasses.dataclass
class NodeRun:
  node_id: str
  state: str             # executed | cached | resolved | failed | not run
  seconds: Optional[float]
  outputs: Dict[str, List[metadata_store_pb2.Artifact]]
  # The execution's string properties (TFX records its exec properties there).
  properties: Dict[str, str] = dataclasses.field(default_factory=dict)


_STATES = {
    metadata_store_pb2.Execution.COMPLETE: "executed",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "failed",
}


def read_node_runs(connection_config, pipeline_name: str, node_ids: List[str],
                   run_id: str, resolver_ids=frozenset()) -> Dict[str, NodeRun]:
  """The latest execution of each node in pipeline run `run_id`.

  Executions are selected by the run's MLMD `pipeline_run` context, not by
  time, so another run writing to the same MLMD cannot show up here.
  Resolver nodes only look up artifacts (they run no executor and cannot be
  cached), so a completed resolution is reported as `resolved`.
  """
  store = metadata_store.MetadataStore(connection_config)
  run_context = store.get_context_by_type_and_name(
      constants.PIPELINE_RUN_CONTEXT_TYPE_NAME, run_id)
  in_run = ({e.id for e in store.get_executions_by_context(run_context.id)}
            if run_context else set())
  runs = {}
  for node_id in node_ids:
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    executions = store.get_executions_by_context(context.id) if context else []
    executions = [e for e in executions if e.id in in_run]
    if not executions:
      runs[node_id] = NodeRun(node_id, "not run", None, {})
      continue
    latest = max(executions, key=lambda e: e.id)
    outputs: Dict[str, List[metadata_store_pb2.Artifact]] = {}
    events = [ev for ev in store.get_events_by_execution_ids([latest.id])
              if ev.type in (metadata_store_pb2.Event.OUTPUT,
                             metadata_store_pb2.Event.DECLARED_OUTPUT)]
    artifacts = {a.id: a for a in store.get_artifacts_by_id(
        [ev.artifact_id for ev in events])}
    for ev in events:
      key = ev.path.steps[0].key if ev.path.steps else ""
      outputs.setdefault(key, []).append(artifacts[ev.artifact_id])
    seconds = (latest.last_update_time_since_epoch - latest.create_time_since_epoch) / 1000
    state = _STATES.get(latest.last_known_state, "failed")
    if node_id in resolver_ids and state == "executed":
      state = "resolved"
    properties = {key: value.string_value for key, value in latest.custom_properties.items()
                  if value.string_value}
    runs[node_id] = NodeRun(node_id, state, seconds, outputs, properties)
  return runs


def custom_property(artifact: metadata_store_pb2.Artifact, key: str):
  """An MLMD artifact's custom property (string or int); None when unset."""
  value = artifact.custom_properties.get(key)
  if value is None:
    return None
  return value.string_value or value.int_value


def failed(runs: Dict[str, NodeRun]) -> List[str]:
  """The nodes whose execution in this run failed."""
  return [run.node_id for run in runs.values() if run.state == "failed"]


def blessed(runs: Dict[str, NodeRun]) -> bool:
  """Whether this run's Evaluator blessed its model."""
  evaluator = runs.get("Evaluator")
  blessings = evaluator.outputs.get("blessing") if evaluator else None
  return bool(blessings and custom_property(blessings[0], "blessed"))


def _warm_start_lines(runs: Dict[str, NodeRun]) -> List[str]:
  """Where the Trainer started from, where the pipeline warm-starts."""
  # pylint: disable=import-outside-toplevel
  from components import warm_start
  run = runs.get(warm_start.NODE_ID)
  if not run or not run.outputs.get("base_model"):
    return []
  base = run.outputs["base_model"][0]
  return warm_start_lines(bool(custom_property(base, warm_start.FOUND_KEY)),
                          custom_property(base, warm_start.SERVED_VERSION_KEY),
                          custom_property(base, warm_start.BASE_SPAN_KEY))


def warm_start_lines(found: bool, served_version, base_span) -> List[str]:
  """Where the Trainer started: the served version of an older span, or scratch."""
  if not found:
    return ["Trained: from scratch (no model served from an older span)"]
  return [f"Trained: warm, from served version {served_version} (trained on span {base_span})"]


def drift_lines(against: str, findings: str, accepted: bool) -> List[str]:
  """What the data gate compared the data with for drift, and any drift a
  person accepted (`findings`: one per line)."""
  if not against:
    return []
  if not findings:
    return [f"Drift: none beyond the schema's thresholds from {against}"]
  return ([f"Drift: ACCEPTED (--accept-drift) from {against}:" if accepted
           else f"Drift: from {against}:"]
          + [f"  {line}" for line in findings.split("\n")])


def _gate_lines(runs: Dict[str, NodeRun]) -> List[str]:
  # pylint: disable=import-outside-toplevel
  from components import anomalies_gate
  run = runs.get("AnomaliesGate")
  if not run or not run.outputs.get("data_check"):
    return []
  check = run.outputs["data_check"][0]
  return drift_lines(custom_property(check, anomalies_gate.DRIFT_AGAINST_KEY) or "",
                     custom_property(check, anomalies_gate.DRIFT_FINDINGS_KEY) or "",
                     bool(custom_property(check, anomalies_gate.DRIFT_ACCEPTED_KEY)))


def format_summary(runs: Dict[str, NodeRun]) -> str:
  """The end-of-run report: components, metrics, blessing, push and TFLite destinations."""
  lines = ["", "Run summary", "-----------"]
  for run in runs.values():
    took = f"{run.seconds:.1f} s" if run.seconds is not None else "-"
    lines.append(f"  {run.node_id:<20} {run.state:<9} {took}")
  lines.extend(_gate_lines(runs))
  lines.extend(_warm_start_lines(runs))
  evaluator = runs.get("Evaluator")
  if evaluator and evaluator.outputs.get("evaluation"):
    # Heavy (TFMA) imports, needed only here.
    # pylint: disable=import-outside-toplevel
    from components.eval_report import report, results, terminal
    from components.eval_report.locate import EVAL_CONFIG_PROPERTY
    # The configured EvalConfig lists a change threshold as not applied when
    # there was no baseline yet.
    evaluation = results.load_evaluation(evaluator.outputs["evaluation"][0].uri,
                                         evaluator.properties.get(EVAL_CONFIG_PROPERTY))
    lines.extend(terminal.format_report(report.terminal_view(evaluation, blessed(runs))))
  eval_report = runs.get("EvalReport")
  if eval_report and eval_report.outputs.get("report"):
    lines.append(f"Report: {custom_property(eval_report.outputs['report'][0], 'report_html')}"
                 " (python -m runners.review)")
  pusher = runs.get("Pusher")
  if pusher and pusher.outputs.get("pushed_model"):
    pushed = pusher.outputs["pushed_model"][0]
    if custom_property(pushed, "pushed"):
      lines.append(f"Pushed: {custom_property(pushed, 'pushed_destination')}"
                   + (" (cached: pushed by an earlier run)" if pusher.state == "cached" else ""))
    else:
      from components.push_records import NOT_PUSHED_REASON  # pylint: disable=import-outside-toplevel
      reason = custom_property(pushed, NOT_PUSHED_REASON) or "model not blessed"
      lines.append(f"Pushed: nothing ({reason})")
  elif pusher:
    lines.append(f"Pushed: nothing (Pusher {pusher.state})")
  exporter = runs.get("TFLiteExporter")
  if exporter and exporter.outputs.get("tflite_export"):
    export = exporter.outputs["tflite_export"][0]
    if custom_property(export, "exported"):
      lines.append(f"TFLite: {custom_property(export, 'tflite_destination')} "
                   f"({custom_property(export, 'quantization')}, "
                   f"{custom_property(export, 'size_bytes')} bytes)")
    else:
      lines.append(f"TFLite: nothing ({custom_property(export, 'reason')})")
  elif exporter:
    lines.append(f"TFLite: nothing (TFLiteExporter {exporter.state})")
  return "\n".join(lines)
