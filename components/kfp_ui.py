"""The evaluation where Kubeflow Pipelines and Vertex AI users look for it.

Their UIs render two artifact types of their own: `system.HTML` (the file
at the artifact's URI, shown as a page) and `system.Metrics` (the scalars
in the artifact's metadata, shown as a table and compared across runs).
`KubeflowUiArtifacts` runs after EvalReport in the Kubeflow specs and
writes the report page as the first and the overall gated metrics with the
blessing as the second; TFX's own EvaluationReport artifact stays for
everything else (the review CLI, lineage).

The types' names are the UIs' (`system.*`), which TFX's task entrypoint
cannot import; components/kfp_entrypoint.py maps them to the classes here.
"""
import json
import os

import tensorflow as tf
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component

from components.eval_report import report as report_lib
from components.eval_report.component import BLESSED_KEY, EvaluationReport


class KubeflowHtml(types.Artifact):
  """An HTML page, rendered by the KFP and Vertex UIs; its URI is the file."""
  TYPE_NAME = "system.HTML"


class KubeflowMetrics(types.Artifact):
  """Scalar metrics in the artifact's metadata, rendered by the KFP and Vertex UIs."""
  TYPE_NAME = "system.Metrics"


def _write_file(uri: str, content: bytes) -> None:
  """Writes `content` at `uri` itself, where a launcher may have made a directory."""
  if tf.io.gfile.isdir(uri):
    tf.io.gfile.rmtree(uri)
  parent = os.path.dirname(uri.rstrip("/"))
  if parent:
    tf.io.gfile.makedirs(parent)
  with tf.io.gfile.GFile(uri, "wb") as f:
    f.write(content)


@component
def KubeflowUiArtifacts(  # pylint: disable=invalid-name
    report: InputArtifact[EvaluationReport],
    html: OutputArtifact[KubeflowHtml],
    metrics: OutputArtifact[KubeflowMetrics]) -> None:
  """report.html as the HTML artifact; overall metrics and blessing as Metrics."""
  with tf.io.gfile.GFile(os.path.join(report.uri, report_lib.REPORT_HTML), "rb") as f:
    _write_file(html.uri, f.read())
  with tf.io.gfile.GFile(os.path.join(report.uri, report_lib.REPORT_JSON)) as f:
    content = json.load(f)
  for metric in content["overall"]:
    for side in ("candidate", "baseline", "diff"):
      if metric[side] is not None:
        name = metric["name"] if side == "candidate" else f"{metric['name']}_{side}"
        metrics.set_float_custom_property(name, float(metric[side]))
  metrics.set_int_custom_property(BLESSED_KEY, int(bool(content["blessing"]["blessed"])))
