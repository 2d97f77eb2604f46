"""Two evaluations side by side, as compare.json and a self-contained compare.html.

Every metric of A and B with TFMA's 95% intervals, overall and per slice,
and B - A. Two separate evaluations have no TFMA interval for their
difference, except when one was the other's baseline: then TFMA computed
that very difference (with its interval) and it is shown as such.
Both sides are read from their report.json (report_files.py): comparing
loads neither TFMA nor TensorFlow. Slices come overall first, then by name.
"""
import html
from typing import Dict, List, Optional, Tuple

from components.eval_report import history, page, versions
from components.eval_report.locate import RecordedEvaluation
from components.eval_report.names import EXAMPLE_COUNT, OVERALL
from components.eval_report.report_files import FoundReport

COMPARE_HTML = "compare.html"
COMPARE_JSON = "compare.json"


def _side(recorded: RecordedEvaluation, found: FoundReport, pushed_versions: dict) -> dict:
  return {"evaluation_id": recorded.id,
          "model_id": recorded.model.id if recorded.model else None,
          "model_uri": recorded.model.uri if recorded.model else None,
          "version": history.version_of(recorded, pushed_versions),
          "blessed": recorded.blessed,
          "report": found.html_path}


def _baseline_model_uri(report: dict) -> Optional[str]:
  """The model artifact URI the report's evaluation compared its candidate with."""
  return report["baseline_model"]["model_uri"] if report["baseline_model"] else None


def _metrics_by_slice(report: dict) -> Dict[str, Dict[str, dict]]:
  """{slice name: {metric name: the report's metric entry}}, overall included."""
  by_slice = {OVERALL: {m["name"]: m for m in report["overall"]}}
  for row in report["slices"]:
    by_slice[row["slice"]] = {m["name"]: m for m in row["metrics"]}
  return by_slice


def _tfma_diff(metric_b: Optional[dict], metric_a: Optional[dict], b_against_a: bool,
               a_against_b: bool) -> Tuple[Optional[float], Optional[list]]:
  """TFMA's B - A and its interval where one evaluation compared against the other."""
  if b_against_a and metric_b is not None and metric_b["diff"] is not None:
    return metric_b["diff"], metric_b["ci95"]["diff"]
  if a_against_b and metric_a is not None and metric_a["diff"] is not None:
    bounds = metric_a["ci95"]["diff"]
    return -metric_a["diff"], [-bounds[1], -bounds[0]] if bounds else None
  return None, None


def _metric_rows(slice_a: Dict[str, dict], slice_b: Dict[str, dict], b_against_a: bool,
                 a_against_b: bool) -> List[dict]:
  rows = []
  for name in sorted(set(slice_a) | set(slice_b)):
    metric_a, metric_b = slice_a.get(name), slice_b.get(name)
    a = metric_a["candidate"] if metric_a else None
    b = metric_b["candidate"] if metric_b else None
    diff, bounds = _tfma_diff(metric_b, metric_a, b_against_a, a_against_b)
    rows.append({
        "name": name,
        "a": a, "a_ci95": metric_a["ci95"]["candidate"] if metric_a else None,
        "b": b, "b_ci95": metric_b["ci95"]["candidate"] if metric_b else None,
        "b_minus_a": b - a if a is not None and b is not None else None,
        "tfma_diff": diff, "tfma_diff_ci95": bounds,
    })
  return rows


def _example_count(metrics: Dict[str, dict]) -> Optional[float]:
  count = metrics.get(EXAMPLE_COUNT)
  return count["candidate"] if count else None


def build(a: RecordedEvaluation, b: RecordedEvaluation, report_a: FoundReport,
          report_b: FoundReport, serving_dir: str) -> dict:
  """The comparison of evaluations `a` and `b`, each with its report
  (report_files.find), as a JSON-ready dict."""
  pushed_versions = versions.versions_by_model(serving_dir)
  b_against_a = bool(a.model) and _baseline_model_uri(report_b.content) == a.model.uri
  a_against_b = bool(b.model) and _baseline_model_uri(report_a.content) == b.model.uri
  slices_a = _metrics_by_slice(report_a.content)
  slices_b = _metrics_by_slice(report_b.content)
  names = [OVERALL] + sorted((set(slices_a) | set(slices_b)) - {OVERALL})
  return {
      "a": _side(a, report_a, pushed_versions), "b": _side(b, report_b, pushed_versions),
      "primary_metric": report_b.content["primary_metric"],
      "tfma_diff_source": ("b evaluated against a as its baseline" if b_against_a else
                           "a evaluated against b as its baseline" if a_against_b else None),
      "slices": [{"slice": name,
                  "example_count": _example_count(slices_a.get(name) or slices_b[name]),
                  "metrics": _metric_rows(slices_a.get(name, {}), slices_b.get(name, {}),
                                          b_against_a, a_against_b)}
                 for name in names],
  }


def _label(side: dict) -> str:
  version = f"version {side['version']}" if side["version"] else "never pushed"
  blessed = "blessed" if side["blessed"] else "not blessed"
  return f"evaluation {side['evaluation_id']} (model {side['model_id']}, {version}, {blessed})"


def _difference(row: dict) -> str:
  if row["tfma_diff"] is not None:
    return (f"{row['tfma_diff']:+.4f}" + page.interval(row["tfma_diff_ci95"], signed=True)
            + '<br><span class="ci">TFMA</span>')
  return "&mdash;" if row["b_minus_a"] is None else f"{row['b_minus_a']:+.4f}"


def render(comparison: dict) -> str:
  a, b = comparison["a"], comparison["b"]
  sections = []
  for entry in comparison["slices"]:
    rows = [([html.escape(r["name"]), page.number(r["a"]) + page.interval(r["a_ci95"]),
              page.number(r["b"]) + page.interval(r["b_ci95"]), _difference(r)], "")
            for r in entry["metrics"]]
    count = entry["example_count"]
    sections.append(f"<h2>{html.escape(entry['slice'])}"
                    + (f" ({count:g} examples)" if count is not None else "") + "</h2>"
                    + page.table(["metric", "A", "B", "B - A"], rows))
  source = comparison["tfma_diff_source"]
  note = (f"B - A with its 95% interval is TFMA's own difference ({html.escape(source)})."
          if source else "The two evaluations did not compare against each other, so B - A "
          "is the difference of the point estimates, without an interval: compare the "
          "intervals of A and B instead.")
  return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Comparison: evaluation {a['evaluation_id']} vs {b['evaluation_id']}</title>
<style>{page.STYLE}</style></head>
<body>
<h1>Two evaluations side by side</h1>
<p class="meta">A: {html.escape(_label(a))}<br>B: {html.escape(_label(b))}</p>
<p>Every value with TFMA's 95% confidence interval under it. {note}</p>
{"".join(sections)}
</body></html>
"""


def write(output_dir: str, comparison: dict) -> Tuple[str, str]:
  """Writes compare.html and compare.json into `output_dir`; returns their paths."""
  return page.write_with_json(output_dir, COMPARE_HTML, render(comparison),
                              COMPARE_JSON, comparison)
