"""What a recorded evaluation says, judged on the report's plain data.

The report (report.py) records these judgements when it is written; the
review CLI's list, history and comparison make them again from report.json
for the metric they show. Both use this module, so they cannot disagree,
and it imports nothing heavy: the review CLI must not load TFMA.
"""
from typing import List, Optional, Sequence

# How a change compares with the noise TFMA's interval of the difference shows.
WORSE, BETTER, WITHIN_NOISE = "significantly worse", "significantly better", "within noise"
NO_INTERVAL, TOO_SMALL = "no interval", "too small to say"


def change_verdict(diff: Optional[float], interval: Optional[Sequence[float]],
                   higher_is_better: bool) -> Optional[str]:
  """WORSE/BETTER when the 95% interval of the difference excludes zero,
  WITHIN_NOISE when it holds zero; None without a difference (no baseline)."""
  if diff is None:
    return None
  if interval is None:
    return NO_INTERVAL
  lower, upper = interval
  if lower <= 0.0 <= upper:
    return WITHIN_NOISE
  return BETTER if (lower > 0.0) == higher_is_better else WORSE


def gate_of(thresholds: List[dict], metric: Optional[str]) -> Optional[dict]:
  """The value threshold on `metric` (the family's gate) among a report's
  `thresholds`, as {"bound", "limit"}; None when it has none."""
  for check in thresholds:
    if check["kind"] == "value" and check["metric"] == metric and check["limit"] is not None:
      return {"bound": check["bound"], "limit": check["limit"]}
  return None


def overall_metric(report: dict, name: Optional[str]) -> Optional[dict]:
  """The report's overall entry for metric `name` (values and `ci95`), None when absent."""
  return next((m for m in report["overall"] if m["name"] == name), None)
