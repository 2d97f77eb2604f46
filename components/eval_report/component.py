"""EvalReport: each run's evaluation as a report artifact in MLMD.

Runs after the Evaluator on its `evaluation` and `blessing` and on the
candidate model, so the report is linked to all three in MLMD lineage and a
reviewer can find the report of any run (see `python -m runners.review`).
The work is in report.py; this module only binds it to TFX.
"""
from tfx import types
from tfx import v1 as tfx

from components.eval_report import report as report_lib

BLESSED_KEY = "blessed"
REPORT_HTML_KEY = "report_html"


class EvaluationReport(types.Artifact):
  """A directory with report.html and report.json of one Evaluator output;
  custom properties: blessed (0/1) and report_html (the page's path)."""
  # Kubeflow names a custom type `<namespace>.<Title>` and imports that name
  # (tfx_model_factory/__init__.py).
  TYPE_NAME = "tfx_model_factory.EvaluationReport"


@tfx.dsl.components.component
def EvalReport(  # pylint: disable=invalid-name
    evaluation: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    report: tfx.dsl.components.OutputArtifact[EvaluationReport]) -> None:
  """Writes report.html and report.json of the evaluation into `report`."""
  blessed = blessing.get_int_custom_property(BLESSED_KEY) == 1
  html_path, _ = report_lib.write(report.uri, evaluation.uri, blessed, model.uri, model.id)
  report.set_int_custom_property(BLESSED_KEY, int(blessed))
  report.set_string_custom_property(REPORT_HTML_KEY, html_path)
