"""One evaluation's report: report.json for machines, report.html for people.

Both are built from the same dictionary, so what a reviewer reads in the page
is exactly what a tool reads in the JSON. The values and their 95%
confidence intervals are TFMA's (read by results.py); this module only
arranges and reads them:
  - every metric carries `ci95` of candidate, baseline and difference;
  - a change (overall or on a slice) is a regression or an improvement only
    when the interval of TFMA's difference excludes zero, else it is within
    noise; slices with fewer than SMALL_SLICE_EXAMPLES examples (or without
    an interval) are too small to say anything;
  - slices are sorted worst first: by the change of the primary (gated)
    metric when there is a baseline, significant regressions first, else by
    its value.
The gate itself is TFMA's validation, unchanged: the report only says
whether the change it judged is within noise.
"""
import dataclasses
import math
from typing import Dict, List, Optional, Tuple

from components.eval_report import page, plots, versions
from components.eval_report import results as eval_results
from components.eval_report.names import EXAMPLE_COUNT, OVERALL, REPORT_HTML, REPORT_JSON
from components.eval_report.results import Evaluation, Interval
from components.eval_report.verdicts import TOO_SMALL, WORSE, change_verdict, gate_of

SMALL_SLICE_EXAMPLES = 30


def primary_metric(evaluation: Evaluation) -> Tuple[Optional[str], bool]:
  """(name, higher_is_better) of the metric slices are sorted and charted by:
  the first thresholded one (the family's gate), else the first scalar metric."""
  for check in evaluation.thresholds:
    if check.kind == "value" and check.slice == OVERALL:
      return check.metric, check.higher_is_better
  for metric in evaluation.overall.metrics:
    if metric.name != EXAMPLE_COUNT:
      return metric.name, True
  return None, True


def _interval(interval: Optional[Interval]) -> Optional[List[float]]:
  return list(interval) if interval is not None else None


def _metric_json(metric: eval_results.MetricComparison) -> dict:
  """A metric's values with their 95% intervals (`ci95`: [lower, upper] or null)."""
  return {"name": metric.name, "candidate": metric.candidate, "baseline": metric.baseline,
          "diff": metric.diff,
          "ci95": {"candidate": _interval(metric.candidate_ci95),
                   "baseline": _interval(metric.baseline_ci95),
                   "diff": _interval(metric.diff_ci95)}}


def _change(metric: Optional[eval_results.MetricComparison],
            higher_is_better: bool) -> Optional[dict]:
  if metric is None or metric.diff is None:
    return None
  return {"metric": metric.name, "diff": metric.diff,
          "diff_ci95": _interval(metric.diff_ci95),
          "verdict": change_verdict(metric.diff, metric.diff_ci95, higher_is_better)}


def _slice_rows(evaluation: Evaluation, metric: Optional[str],
                higher_is_better: bool) -> List[dict]:
  """Every slice but the overall one, worst first."""
  rows = []
  for result in evaluation.slices[1:]:
    count = result.example_count
    small = count is not None and count < SMALL_SLICE_EXAMPLES
    primary = result.metric(metric) if metric else None
    change = _change(primary, higher_is_better)
    if change is not None and small:
      change["verdict"] = TOO_SMALL
    rows.append({
        "slice": result.name,
        "features": dict(result.key),  # TFMA's slice values: str, int or float
        "example_count": count,
        "small": small,
        "metrics": [_metric_json(m) for m in result.metrics],
        "change": change,
        "regression": bool(change and change["verdict"] == WORSE),
    })

  def worse_first(value: Optional[float]) -> float:
    return (value if higher_is_better else -value) if value is not None else math.inf

  def order(row):
    if evaluation.has_baseline:
      diff = row["change"]["diff"] if row["change"] else None
      return (not row["regression"], worse_first(diff), row["slice"])
    comparison = next((m for m in row["metrics"] if m["name"] == metric), None)
    value = comparison["candidate"] if comparison else None
    return (sorted(row["features"]), worse_first(value), row["slice"])

  return sorted(rows, key=order)


def _slices_by_feature(rows: List[dict], metric: str) -> Dict[str, List[dict]]:
  """The primary metric of each slice, per slicing feature (or feature cross),
  in the order of the slicing feature's values."""
  charts: Dict[str, List[dict]] = {}
  for row in sorted(rows, key=lambda r: (sorted(r["features"]), str(r["features"]))):
    comparison = next((m for m in row["metrics"] if m["name"] == metric), None)
    if comparison is None:
      continue
    charts.setdefault(" x ".join(row["features"]), []).append({
        "value": ", ".join(str(v) for v in row["features"].values()),
        "examples": row["example_count"],
        "small": row["small"],
        "candidate": comparison["candidate"],
        "baseline": comparison["baseline"],
        "candidate_ci95": comparison["ci95"]["candidate"],
        "baseline_ci95": comparison["ci95"]["baseline"],
    })
  return charts


def data_check_outcome(against: str, findings: str, accepted: bool) -> dict:
  """What the data gate compared the run's data with for drift, what it
  found (one finding per line) and whether a person accepted it."""
  return {"drift_against": against,
          "drift_findings": [line for line in findings.split("\n") if line],
          "drift_accepted": accepted}


def terminal_view(evaluation: Evaluation, blessed: bool) -> dict:
  """The part of the report terminal.format_report prints: the runner's
  summary prints it straight from the evaluation, as the review CLI prints
  it from report.json."""
  return {"baseline_model": {} if evaluation.has_baseline else None,
          "overall": [_metric_json(m) for m in evaluation.overall.metrics],
          "thresholds": [dataclasses.asdict(t) for t in evaluation.thresholds],
          "blessing": {"blessed": blessed, "reason": evaluation.validation_reason}}


def build(evaluation: Evaluation, blessed: bool, model_uri: str, model_id: Optional[int],
          push: Optional[dict] = None, baseline_model_uri: Optional[str] = None,
          baseline_version: Optional[str] = None,
          data_check: Optional[dict] = None) -> Tuple[dict, List[Tuple[str, str]]]:
  """(the report as a JSON-ready dict, [(figure title, PNG data URI)]).

  `push`: what the Pusher did with the candidate (versions.push_outcome),
  None when not known; `baseline_model_uri`/`baseline_version`: the model
  artifact and served version the baseline was, where known; `data_check`:
  the data gate's drift check (data_check_outcome), None when not known.
  """
  metric, higher_is_better = primary_metric(evaluation)
  rows = _slice_rows(evaluation, metric, higher_is_better)
  shown = terminal_view(evaluation, blessed)
  figures = plots.render(evaluation, _slices_by_feature(rows, metric) if metric else {},
                         metric, SMALL_SLICE_EXAMPLES, gate_of(shown["thresholds"], metric))
  report = {
      **shown,
      "evaluation_uri": evaluation.uri,
      "model": {"uri": model_uri, "id": model_id,
                "evaluated_location": evaluation.candidate_location},
      "baseline_model": ({"evaluated_location": evaluation.baseline_location,
                          "model_uri": baseline_model_uri, "version": baseline_version}
                         if evaluation.has_baseline else None),
      "push": push,
      "data_check": data_check,
      "change": _change(evaluation.overall.metric(metric) if metric else None,
                        higher_is_better),
      "primary_metric": {"name": metric, "higher_is_better": higher_is_better},
      "small_slice_examples": SMALL_SLICE_EXAMPLES,
      "slices": rows,
      "plots": [title for title, _ in figures],
  }
  return report, figures


def write(output_dir: str, evaluation_uri: str, blessed: bool, model_uri: str,
          model_id: Optional[int] = None, *, push: Optional[dict] = None,
          serving_dir: str = "", baseline_uri: Optional[str] = None,
          configured_eval_config: Optional[str] = None,
          data_check: Optional[dict] = None) -> Tuple[str, str]:
  """Writes report.html and report.json of the Evaluator output at
  `evaluation_uri` into `output_dir` (local or gs://); returns their paths.

  `serving_dir` (where pushes go) names the served version the baseline
  (model artifact `baseline_uri`) was; `configured_eval_config`: see
  results.load_evaluation; `data_check`: see `build`.
  """
  evaluation = eval_results.load_evaluation(evaluation_uri, configured_eval_config)
  baseline_model_uri = baseline_version = None
  if evaluation.has_baseline:
    baseline_model_uri = versions.evaluated_model_uri(evaluation.baseline_location,
                                                      baseline_uri)
    baseline_version = versions.versions_by_model(serving_dir).get(baseline_model_uri)
  report, figures = build(evaluation, blessed, model_uri, model_id, push,
                          baseline_model_uri, baseline_version, data_check)
  return page.write_with_json(output_dir, REPORT_HTML, page.render(report, figures),
                              REPORT_JSON, report)
