"""EvalReport: each run's evaluation as a report artifact in MLMD.

Runs after the Evaluator and the Pusher, on the `evaluation`, the `blessing`,
the candidate model, the Pusher's `pushed_model` and the data gate's
`data_check`, so the report is linked to all five in MLMD lineage, a
reviewer can find the report of any run (see `python -m runners.review`),
and the report can name the version it was pushed as (or why it was not),
the served version it was compared with, and any drift a person accepted.
`eval_config` is the EvalConfig as configured: TFX drops the change
thresholds from the one it runs when there is no baseline yet, and the
report shows them as not applied rather than leaving them out.
The work is in report.py; this module only binds it to TFX.
"""
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components import anomalies_gate
from components.push_records import NOT_PUSHED_REASON
from components.eval_report import report as report_lib
from components.eval_report import versions
from components.eval_report.names import BLESSED_KEY, REPORT_HTML_KEY, REPORT_TYPE_NAME

# The Evaluator's blessing names the baseline model it compared with (TFX).
BASELINE_MODEL_KEY = "baseline_model"


class EvaluationReport(types.Artifact):
  """A directory with report.html and report.json of one Evaluator output;
  custom properties: blessed (0/1) and report_html (the page's path)."""
  TYPE_NAME = REPORT_TYPE_NAME


@component
def EvalReport(  # pylint: disable=invalid-name
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    blessing: InputArtifact[standard_artifacts.ModelBlessing],
    model: InputArtifact[standard_artifacts.Model],
    pushed_model: InputArtifact[standard_artifacts.PushedModel],
    data_check: InputArtifact[anomalies_gate.DataCheck],
    report: OutputArtifact[EvaluationReport],
    serving_dir: Parameter[str],
    eval_config: Parameter[str]) -> None:
  """Writes report.html and report.json of the evaluation into `report`."""
  blessed = blessing.get_int_custom_property(BLESSED_KEY) == 1
  push = versions.push_outcome(
      pushed_model.get_int_custom_property(versions.PUSHED_KEY) == 1,
      pushed_model.get_string_custom_property(versions.PUSHED_VERSION_KEY),
      pushed_model.get_string_custom_property(versions.PUSHED_DESTINATION_KEY),
      pushed_model.get_string_custom_property(NOT_PUSHED_REASON))
  html_path, _ = report_lib.write(
      report.uri, evaluation.uri, blessed, model.uri, model.id, push=push,
      serving_dir=serving_dir,
      baseline_uri=blessing.get_string_custom_property(BASELINE_MODEL_KEY) or None,
      configured_eval_config=eval_config,
      data_check=report_lib.data_check_outcome(
          data_check.get_string_custom_property(anomalies_gate.DRIFT_AGAINST_KEY),
          data_check.get_string_custom_property(anomalies_gate.DRIFT_FINDINGS_KEY),
          data_check.get_int_custom_property(anomalies_gate.DRIFT_ACCEPTED_KEY) == 1))
  report.set_int_custom_property(BLESSED_KEY, int(blessed))
  report.set_string_custom_property(REPORT_HTML_KEY, html_path)
