"""One evaluation's report: report.json for machines, report.html for people.

Both are built from the same dictionary, so what a reviewer reads in the page
is exactly what a tool reads in the JSON. The values are TFMA's (read by
results.py); this module only arranges them: slices sorted
worst first by the primary (gated) metric, slices with fewer than
SMALL_SLICE_EXAMPLES examples flagged, since their metrics are too noisy to
act on.
"""
import dataclasses
import json
import math
import os
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from components.eval_report import page, plots
from components.eval_report import results as eval_results
from components.eval_report.results import EXAMPLE_COUNT, Evaluation

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
SMALL_SLICE_EXAMPLES = 30


def primary_metric(evaluation: Evaluation) -> Tuple[Optional[str], bool]:
  """(name, higher_is_better) of the metric slices are sorted and charted by:
  the first thresholded one (the family's gate), else the first scalar metric."""
  for check in evaluation.thresholds:
    if check.kind == "value" and check.slice == eval_results.OVERALL:
      return check.metric, check.higher_is_better
  for metric in evaluation.overall.metrics:
    if metric.name != EXAMPLE_COUNT:
      return metric.name, True
  return None, True


def _slice_rows(evaluation: Evaluation, metric: Optional[str],
                higher_is_better: bool) -> List[dict]:
  """Every slice but the overall one, grouped by feature, worst first."""
  rows = []
  for result in evaluation.slices[1:]:
    count = result.example_count
    rows.append({
        "slice": result.name,
        "features": dict(result.key),  # TFMA's slice values: str, int or float
        "example_count": count,
        "small": count is not None and count < SMALL_SLICE_EXAMPLES,
        "metrics": [dataclasses.asdict(m) for m in result.metrics],
    })

  def order(row):
    comparison = next((m for m in row["metrics"] if m["name"] == metric), None)
    value = comparison["candidate"] if comparison else None
    worst_first = (value if higher_is_better else -value) if value is not None else math.inf
    return (sorted(row["features"]), worst_first, row["slice"])

  return sorted(rows, key=order)


def _slices_by_feature(rows: List[dict], metric: str) -> Dict[str, List[dict]]:
  """The primary metric of each slice, per slicing feature (or feature cross)."""
  charts: Dict[str, List[dict]] = {}
  for row in rows:
    comparison = next((m for m in row["metrics"] if m["name"] == metric), None)
    if comparison is None:
      continue
    charts.setdefault(" x ".join(row["features"]), []).append({
        "value": ", ".join(str(v) for v in row["features"].values()),
        "examples": row["example_count"],
        "small": row["small"],
        "candidate": comparison["candidate"],
        "baseline": comparison["baseline"],
    })
  return charts


def build(evaluation: Evaluation, blessed: bool, model_uri: str,
          model_id: Optional[int]) -> Tuple[dict, List[Tuple[str, str]]]:
  """(the report as a JSON-ready dict, [(figure title, PNG data URI)])."""
  metric, higher_is_better = primary_metric(evaluation)
  rows = _slice_rows(evaluation, metric, higher_is_better)
  figures = plots.render(evaluation, _slices_by_feature(rows, metric) if metric else {},
                         metric, SMALL_SLICE_EXAMPLES)
  report = {
      "evaluation_uri": evaluation.uri,
      "model": {"uri": model_uri, "id": model_id,
                "evaluated_location": evaluation.candidate_location},
      "baseline_model": ({"evaluated_location": evaluation.baseline_location}
                         if evaluation.has_baseline else None),
      "blessing": {"blessed": blessed, "reason": evaluation.validation_reason},
      "overall": [dataclasses.asdict(m) for m in evaluation.overall.metrics],
      "thresholds": [dataclasses.asdict(t) for t in evaluation.thresholds],
      "primary_metric": {"name": metric, "higher_is_better": higher_is_better},
      "small_slice_examples": SMALL_SLICE_EXAMPLES,
      "slices": rows,
      "plots": [title for title, _ in figures],
  }
  return report, figures


def write(output_dir: str, evaluation_uri: str, blessed: bool, model_uri: str,
          model_id: Optional[int] = None) -> Tuple[str, str]:
  """Writes report.html and report.json of the Evaluator output at
  `evaluation_uri` into `output_dir` (local or gs://); returns their paths."""
  evaluation = eval_results.load_evaluation(evaluation_uri)
  report, figures = build(evaluation, blessed, model_uri, model_id)
  tf.io.gfile.makedirs(output_dir)
  html_path = os.path.join(output_dir, REPORT_HTML)
  json_path = os.path.join(output_dir, REPORT_JSON)
  with tf.io.gfile.GFile(json_path, "w") as f:
    f.write(json.dumps(report, indent=2, sort_keys=True, allow_nan=False))
  with tf.io.gfile.GFile(html_path, "w") as f:
    f.write(page.render(report, figures))
  return html_path, json_path
