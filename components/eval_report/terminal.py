"""One evaluation as terminal lines, for the runner's summary and the review CLI.

Both print these lines from the report's own dictionary (report.json, see
report.py), so a run's summary and a later review of the same evaluation say
the same thing, and the review CLI prints them without loading TFMA.
"""
from typing import List, Optional

from components.eval_report.names import EXAMPLE_COUNT


def _number(value: Optional[float]) -> str:
  return "-" if value is None else f"{value:.4f}"


def format_report(report: dict) -> List[str]:
  """Overall metrics (candidate, baseline, TFMA's diff), every threshold with
  its outcome, and the blessing, from a report dictionary (or the part of it
  report.terminal_view gives)."""
  has_baseline = report["baseline_model"] is not None
  lines = ["Metrics (overall slice; candidate vs blessed baseline):"]
  for metric in report["overall"]:
    line = f"  {metric['name']:<32} {_number(metric['candidate'])}"
    if has_baseline:
      diff = "-" if metric["diff"] is None else f"{metric['diff']:+.4f}"
      line += f"   baseline {_number(metric['baseline'])}   diff {diff}"
    lines.append(line)
  if not has_baseline:
    lines.append("  (no blessed baseline yet: only absolute thresholds applied)")
  for metric in report["overall"]:
    interval = metric["ci95"]["diff"]
    if metric["diff"] is not None and interval is not None and metric["name"] != EXAMPLE_COUNT:
      noise = "within noise" if interval[0] <= 0.0 <= interval[1] else "beyond noise"
      lines.append(f"  {metric['name']:<32} diff 95% interval [{interval[0]:+.4f}, "
                   f"{interval[1]:+.4f}]: {noise}")
  lines.append("Thresholds:")
  for check in report["thresholds"]:
    what = "change vs baseline" if check["kind"] == "change" else "value"
    if not check["applied"]:
      lines.append(f"  NOT APPLIED  {check['metric']} on {check['slice']}: {what} "
                   f"needs {check['bound']} (no baseline yet)")
      continue
    verdict = {True: "PASS", False: "FAIL", None: "NOT CHECKED"}[check["passed"]]
    lines.append(f"  {verdict:<4}  {check['metric']} on {check['slice']}: {what} "
                 f"{_number(check['value'])}, needs {check['bound']}")
  blessing = report["blessing"]
  lines.append(f"Blessed: {'yes' if blessing['blessed'] else 'NO'} ({blessing['reason']})")
  return lines
