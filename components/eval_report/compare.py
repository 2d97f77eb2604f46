"""Two evaluations side by side, as compare.json and a self-contained compare.html.

Every metric of A and B with TFMA's 95% intervals, overall and per slice,
and B - A. Two separate evaluations have no TFMA interval for their
difference, except when one was the other's baseline: then TFMA computed
that very difference (with its interval) and it is shown as such.
"""
import html
from typing import List, Optional, Tuple

from components.eval_report import history, page, report, results, versions
from components.eval_report.locate import RecordedEvaluation

COMPARE_HTML = "compare.html"
COMPARE_JSON = "compare.json"


def _side(recorded: RecordedEvaluation, pushed_versions: dict) -> dict:
  return {"evaluation_id": recorded.id,
          "model_id": recorded.model.id if recorded.model else None,
          "model_uri": recorded.model.uri if recorded.model else None,
          "version": history.version_of(recorded, pushed_versions),
          "blessed": recorded.blessed,
          "report": history.report_path(recorded)}


def _baseline_of(recorded: RecordedEvaluation, evaluation: results.Evaluation) -> Optional[str]:
  """The model artifact URI `evaluation` compared its candidate with."""
  if not evaluation.has_baseline:
    return None
  return versions.evaluated_model_uri(evaluation.baseline_location,
                                      recorded.baseline.uri if recorded.baseline else None)


def _tfma_diff(metric_b: Optional[results.MetricComparison],
               metric_a: Optional[results.MetricComparison],
               b_against_a: bool, a_against_b: bool) -> Tuple[Optional[float], Optional[list]]:
  """TFMA's B - A and its interval where one evaluation compared against the other."""
  if b_against_a and metric_b is not None and metric_b.diff is not None:
    return metric_b.diff, list(metric_b.diff_ci95) if metric_b.diff_ci95 else None
  if a_against_b and metric_a is not None and metric_a.diff is not None:
    bounds = metric_a.diff_ci95
    return -metric_a.diff, [-bounds[1], -bounds[0]] if bounds else None
  return None, None


def _metric_rows(slice_a: Optional[results.SliceResult], slice_b: Optional[results.SliceResult],
                 b_against_a: bool, a_against_b: bool) -> List[dict]:
  names = sorted({m.name for s in (slice_a, slice_b) if s for m in s.metrics})
  rows = []
  for name in names:
    metric_a = slice_a.metric(name) if slice_a else None
    metric_b = slice_b.metric(name) if slice_b else None
    a = metric_a.candidate if metric_a else None
    b = metric_b.candidate if metric_b else None
    diff, bounds = _tfma_diff(metric_b, metric_a, b_against_a, a_against_b)
    rows.append({
        "name": name,
        "a": a, "a_ci95": list(metric_a.candidate_ci95) if metric_a and metric_a.candidate_ci95
        else None,
        "b": b, "b_ci95": list(metric_b.candidate_ci95) if metric_b and metric_b.candidate_ci95
        else None,
        "b_minus_a": b - a if a is not None and b is not None else None,
        "tfma_diff": diff, "tfma_diff_ci95": bounds,
    })
  return rows


def build(a: RecordedEvaluation, b: RecordedEvaluation, serving_dir: str) -> dict:
  """The comparison of evaluations `a` and `b` as a JSON-ready dict."""
  evaluation_a = results.load_evaluation(a.evaluation.uri, a.eval_config)
  evaluation_b = results.load_evaluation(b.evaluation.uri, b.eval_config)
  pushed_versions = versions.versions_by_model(serving_dir)
  b_against_a = bool(a.model) and _baseline_of(b, evaluation_b) == a.model.uri
  a_against_b = bool(b.model) and _baseline_of(a, evaluation_a) == b.model.uri
  slices_b = {s.name: s for s in evaluation_b.slices}
  slices_a = {s.name: s for s in evaluation_a.slices}
  names = [s.name for s in evaluation_a.slices] + [
      s.name for s in evaluation_b.slices if s.name not in slices_a]
  metric, higher_is_better = report.primary_metric(evaluation_b)
  return {
      "a": _side(a, pushed_versions), "b": _side(b, pushed_versions),
      "primary_metric": {"name": metric, "higher_is_better": higher_is_better},
      "tfma_diff_source": ("b evaluated against a as its baseline" if b_against_a else
                           "a evaluated against b as its baseline" if a_against_b else None),
      "slices": [{"slice": name,
                  "example_count": (slices_a.get(name) or slices_b.get(name)).example_count,
                  "metrics": _metric_rows(slices_a.get(name), slices_b.get(name),
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
