"""The project's custom artifact types under the names Kubeflow specs give them.

A Kubeflow v2 spec names a custom artifact type by its TYPE_NAME, which must
read `<namespace>.<Title>`, and TFX's task entrypoint re-creates the Python
class by importing that very name (kubeflow_v2_entrypoint_utils). Every
custom type is therefore named `tfx_model_factory.<Class>` and importable
from here.
"""
from components.anomalies_gate import DataCheck
from components.eval_report.component import EvaluationReport
from components.tflite_exporter.component import TFLiteExport

__all__ = ["DataCheck", "EvaluationReport", "TFLiteExport"]
