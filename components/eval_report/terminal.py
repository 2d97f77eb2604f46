"""One evaluation as terminal lines, for the runner's summary and the review CLI.

Both print these lines, so a run's summary and a later review of the same
evaluation say the same thing.
"""
from typing import List, Optional

from components.eval_report.results import Evaluation


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
    lines.append("  (no blessed baseline: only absolute thresholds applied)")
  lines.append("Thresholds:")
  for check in evaluation.thresholds:
    verdict = {True: "PASS", False: "FAIL", None: "NOT CHECKED"}[check.passed]
    what = "change vs baseline" if check.kind == "change" else "value"
    lines.append(f"  {verdict:<4}  {check.metric} on {check.slice}: {what} "
                 f"{_number(check.value)}, needs {check.bound}")
  lines.append(f"Blessed: {'yes' if blessed else 'NO'} ({evaluation.validation_reason})")
  return lines
