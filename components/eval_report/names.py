"""The names under which the pipeline records an evaluation's report, for its readers.

EvalReport (component.py) writes them and the review CLI (runners/review.py)
looks for them in MLMD and on disk. The CLI must answer in well under a
second, so this module imports nothing: TFX, TFMA and TensorFlow stay out
of what only reads recorded reports.
"""
# The report artifact's MLMD type. Kubeflow names a custom type
# `<namespace>.<Title>` and imports that name (tfx_model_factory/__init__.py).
REPORT_TYPE_NAME = "tfx_model_factory.EvaluationReport"
# TFX's standard_artifacts.ModelEvaluation.TYPE_NAME (a test holds them equal).
MODEL_EVALUATION_TYPE_NAME = "ModelEvaluation"
# Custom properties: the Evaluator's blessing and the report carry BLESSED_KEY
# (0/1); the report carries the page's path.
BLESSED_KEY = "blessed"
REPORT_HTML_KEY = "report_html"
# The files of one report directory.
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
# TFMA's name of the slice that holds every example.
OVERALL = "Overall"
# TFMA's metric counting each slice's examples, as the report names it.
EXAMPLE_COUNT = "example_count"
# The two models an evaluation compares, as the report's plots name them.
CANDIDATE = "candidate"
BASELINE = "baseline"
