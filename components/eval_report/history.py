"""A family's evaluations over time, as history.json and a self-contained history.html.

Answers "how has this family moved over its last versions?": for every
evaluation MLMD holds (oldest first), the gated metric of the candidate with
TFMA's 95% interval, the change against its baseline and whether that change
is within noise, the blessing, the version it was pushed as (or why not), and
which of them is served now. The page opens offline like the report: inline
CSS, the trend plot as a PNG data: URI, no script.
Everything is read from each evaluation's report.json (report_files.py), so
`runners.review --list` answers without TFMA or TensorFlow; matplotlib is
loaded only to draw the page.
"""
import datetime
import html
from typing import List, Optional, Tuple

from components.eval_report import page, verdicts, versions
from components.eval_report.locate import RecordedEvaluation
from components.eval_report.report_files import FoundReport

HISTORY_HTML = "history.html"
HISTORY_JSON = "history.json"


def _utc(milliseconds: int) -> str:
  return datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.timezone.utc).strftime(
      "%Y-%m-%d %H:%M:%S UTC")


def version_of(recorded: RecordedEvaluation, pushed_versions: dict) -> Optional[str]:
  """The served version the evaluated candidate is (pushed by this run or an
  earlier one), None when it never was pushed."""
  push = recorded.push
  if push and push["pushed"] and push["version"]:
    return push["version"]
  return pushed_versions.get(recorded.model.uri) if recorded.model else None


def build(family_name: str, recorded: List[RecordedEvaluation],
          reports: List[Optional[FoundReport]], serving_dir: str) -> dict:
  """The history of `recorded` (oldest first), each with its report
  (report_files.find; None: gone, its entry has no metric), as a JSON-ready
  dict; the metric is the newest report's primary metric."""
  newest = next((found.content for found in reversed(reports) if found), None)
  metric = newest["primary_metric"]["name"] if newest else None
  higher_is_better = newest["primary_metric"]["higher_is_better"] if newest else True
  served_version, served_model = versions.served(serving_dir)
  pushed_versions = versions.versions_by_model(serving_dir)
  entries = []
  for one, found in zip(recorded, reports):
    value = verdicts.overall_metric(found.content, metric) if found else None
    push = one.push
    model_uri = one.model.uri if one.model else None
    entries.append({
        "evaluation_id": one.id,
        "evaluated_at": _utc(one.created_ms),
        "model_id": one.model.id if one.model else None,
        "model_uri": model_uri,
        "value": value["candidate"] if value else None,
        "ci95": value["ci95"]["candidate"] if value else None,
        "baseline_value": value["baseline"] if value else None,
        "diff": value["diff"] if value else None,
        "diff_ci95": value["ci95"]["diff"] if value else None,
        "change": (verdicts.change_verdict(value["diff"], value["ci95"]["diff"],
                                           higher_is_better) if value else None),
        "blessed": one.blessed,
        "pushed_version": version_of(one, pushed_versions),
        "push_reason": push["reason"] if push and not push["pushed"] else None,
        "served": model_uri is not None and model_uri == served_model,
        "report": found.html_path if found else None,
    })
  gate = verdicts.gate_of(newest["thresholds"], metric) if newest else None
  return {"family": family_name, "metric": metric, "higher_is_better": higher_is_better,
          "gate": gate, "served_version": served_version, "evaluations": entries}


def trend_plot(history: dict) -> str:
  """The gated metric per evaluation with its 95% interval; blessed filled,
  not blessed hollow, the served one starred, the gate dashed."""
  # Drawing only: matplotlib is loaded for the page, not for --list.
  # pylint: disable=import-outside-toplevel
  from matplotlib.figure import Figure
  from components.eval_report import plots
  entries = [e for e in history["evaluations"] if e["value"] is not None]
  figure = Figure(figsize=(max(6.0, 0.7 * len(entries) + 3), 4))
  axes = figure.subplots()
  numbers = []
  for position, entry in enumerate(entries):
    bounds = entry["ci95"]
    errors = [[entry["value"] - bounds[0]], [bounds[1] - entry["value"]]] if bounds else None
    color = "#188038" if entry["blessed"] else "#d93025"
    axes.errorbar([position], [entry["value"]], yerr=errors, fmt="o", markersize=10,
                  color=color, capsize=5, elinewidth=2,
                  markerfacecolor=color if entry["blessed"] else "white")
    numbers += [entry["value"]] + (list(bounds) if bounds else [])
    if entry["served"]:
      axes.annotate("served", (position, entry["value"]), textcoords="offset points",
                    xytext=(0, 14), ha="center", fontsize=9, fontweight="bold")
  axes.plot(list(range(len(entries))), [e["value"] for e in entries],
            color="#1f77b4", linewidth=1.5, zorder=0)
  low, high = plots.zoomed_limits(numbers) if numbers else (0.0, 1.0)
  gate = history["gate"]
  if gate is not None and low - (high - low) <= gate["limit"] <= high + (high - low):
    low, high = min(low, gate["limit"]), max(high, gate["limit"])
    axes.axhline(gate["limit"], color="#d62728", linestyle="--", linewidth=1.5,
                 label=f"gate {gate['bound']}")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
  margin = 0.05 * (high - low)
  axes.set_ylim(low - margin, high + margin)
  axes.set_xlim(-0.6, len(entries) - 0.4)
  axes.grid(axis="y", color="#dddddd")
  axes.set_xticks(list(range(len(entries))),
                  [f"eval {e['evaluation_id']}\n" + (f"v{e['pushed_version']}"
                                                     if e["pushed_version"] else "not pushed")
                   for e in entries], fontsize=8)
  axes.set_xlabel("evaluation, oldest first (filled: blessed; hollow: not blessed; "
                  "whiskers: 95% interval)")
  axes.set_ylabel(history["metric"] or "")
  axes.set_title(f"{history['family']}: {history['metric']} over time (overall slice)")
  return plots.data_uri(figure)


def _row(entry: dict) -> Tuple[List[str], str]:
  change = "&mdash;"
  if entry["diff"] is not None:
    change = f"{entry['diff']:+.4f}" + page.interval(entry["diff_ci95"], signed=True)
    change += f"<br>{html.escape(entry['change'] or '')}"
  pushed = (html.escape(entry["pushed_version"]) if entry["pushed_version"]
            else f"not pushed ({html.escape(entry['push_reason'] or 'unknown')})")
  report_cell = (f"<code>{html.escape(entry['report'])}</code>" if entry["report"]
                 else "&mdash;")
  cells = [str(entry["evaluation_id"]), html.escape(entry["evaluated_at"]),
           str(entry["model_id"]), page.number(entry["value"]) + page.interval(entry["ci95"]),
           change, '<span class="pass">yes</span>' if entry["blessed"]
           else '<span class="fail">no</span>', pushed,
           "<strong>served now</strong>" if entry["served"] else "", report_cell]
  return cells, ""


def render(history: dict, figure: str) -> str:
  metric = html.escape(history["metric"] or "")
  served = (f"version {html.escape(history['served_version'])}" if history["served_version"]
            else "nothing")
  rows = [_row(e) for e in history["evaluations"]]
  table = page.table(["evaluation", "evaluated at", "model", f"{metric} (95% interval)",
                      "change vs its baseline", "blessed", "pushed version", "served",
                      "report"], rows)
  return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Model history: {html.escape(history['family'])}</title>
<style>{page.STYLE}</style></head>
<body>
<h1>Model history: {html.escape(history['family'])}</h1>
<p class="meta">Served now: {served}. {len(history['evaluations'])} evaluation(s) recorded,
oldest first. The metric is the gated one, {metric}, on the overall slice, with TFMA's 95%
confidence interval; a change is within noise when the interval of the difference holds zero.</p>
<figure><img alt="{metric} over time" src="{figure}">
<figcaption>{metric} per evaluation</figcaption></figure>
{table}
</body></html>
"""


def write(output_dir: str, history: dict) -> Tuple[str, str]:
  """Writes history.html and history.json into `output_dir`; returns their paths."""
  return page.write_with_json(output_dir, HISTORY_HTML, render(history, trend_plot(history)),
                              HISTORY_JSON, history)
