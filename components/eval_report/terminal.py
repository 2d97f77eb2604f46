"""One evaluation as terminal lines, for the runner's summary and the review CLI.

Both print these lines, so a run's summary and a later review of the same
evaluation say the same thing.
"""
from typing import List, Optional

from components.eval_report.results import EXAMPLE_COUNT, Evaluation


def _number(value: Optional[float]) -> str:
  return "-" if value is None else f"{value:.4f}"


def format_evaluation(evaluation: Evaluation, blessed: bool) -> List[str]:
  """Overall metrics (candidate, baseline, TFMA's diff), every threshold with
  its outcome, and the blessing."""
  lines = ["Metrics (overall slice; candidate vs blessed baseline):"]
  for metric in evaluation.overall.metrics:
    line = f"  {metric.name:<32} {_number(metric.candidate)}"
    if evaluation.has_baseline:
      diff = "-" if metric.diff is None else f"{metric.diff:+.4f}"
      line += f"   baseline {_number(metric.baseline)}   diff {diff}"
    lines.append(line)
  if not evaluation.has_baseline:
    lines.append("  (no blessed baseline yet: only absolute thresholds applied)")
  for metric in evaluation.overall.metrics:
    interval = metric.diff_ci95
    if metric.diff is not None and interval is not None and metric.name != EXAMPLE_COUNT:
      noise = "within noise" if interval[0] <= 0.0 <= interval[1] else "beyond noise"
      lines.append(f"  {metric.name:<32} diff 95% interval [{interval[0]:+.4f}, "
                   f"{interval[1]:+.4f}]: {noise}")
  lines.append("Thresholds:")
  for check in evaluation.thresholds:
    what = "change vs baseline" if check.kind == "change" else "value"
    if not check.applied:
      lines.append(f"  NOT APPLIED  {check.metric} on {check.slice}: {what} "
                   f"needs {check.bound} (no baseline yet)")
      continue
    verdict = {True: "PASS", False: "FAIL", None: "NOT CHECKED"}[check.passed]
    lines.append(f"  {verdict:<4}  {check.metric} on {check.slice}: {what} "
                 f"{_number(check.value)}, needs {check.bound}")
  lines.append(f"Blessed: {'yes' if blessed else 'NO'} ({evaluation.validation_reason})")
  return lines
