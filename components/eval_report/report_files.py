"""The report the review CLI shows for an evaluation: the pipeline's, else one regenerated once.

EvalReport records each run's report (report.json and report.html) in MLMD.
Runs from before it existed, or whose report files are gone, have none: the
report is then written from the Evaluator output into a directory the caller
names, once, and read back from there on every later look. Reading a report
needs only its JSON; writing one is the only step that loads TFMA.
"""
import dataclasses
import json
from typing import Optional

from components import storage, uris
from components.eval_report.locate import RecordedEvaluation
from components.eval_report.names import REPORT_HTML, REPORT_JSON


@dataclasses.dataclass(frozen=True)
class FoundReport:
  html_path: str
  content: dict  # report.json (see report.py)
  source: str    # where it came from, in words


def read(directory: str) -> Optional[dict]:
  """report.json in `directory`, None when there is none."""
  path = uris.join(directory, REPORT_JSON)
  return json.loads(storage.read_text(path)) if storage.exists(path) else None


def find(evaluation: RecordedEvaluation, regenerated_dir: str,
         serving_dir: str) -> Optional[FoundReport]:
  """The pipeline's report of `evaluation`; else the one regenerated into
  `regenerated_dir`, written there first when missing or made from another
  evaluation (a metadata store recreated over old outputs restarts ids);
  None when there is none and the Evaluator output is gone too."""
  recorded = evaluation.report
  if recorded is not None:
    content = read(recorded.uri)
    if content is not None:
      return FoundReport(uris.join(recorded.uri, REPORT_HTML), content,
                         f"recorded by the pipeline (EvaluationReport artifact {recorded.id})")
  content = read(regenerated_dir)
  if content is None or content["evaluation_uri"] != evaluation.evaluation.uri:
    if not storage.exists(evaluation.evaluation.uri):
      return None
    # TFMA, only for an evaluation without a report.
    from components.eval_report import report  # pylint: disable=import-outside-toplevel
    model = evaluation.model
    report.write(regenerated_dir, evaluation.evaluation.uri, evaluation.blessed,
                 model.uri if model else "", model.id if model else None,
                 push=evaluation.push, serving_dir=serving_dir,
                 baseline_uri=evaluation.baseline.uri if evaluation.baseline else None,
                 configured_eval_config=evaluation.eval_config)
    content = read(regenerated_dir)
  return FoundReport(uris.join(regenerated_dir, REPORT_HTML), content,
                     f"regenerated from evaluation artifact {evaluation.id} "
                     "(no report recorded for it)")
