"""Renders a report dictionary (components/eval_report/report.py) as one HTML page.

The page must open from a file, offline, in any browser, years later: all
styling is inline, figures are data: URIs, there is no script and no
reference to anything outside the file. Every value is escaped.
"""
import html
import json
from typing import List, Optional, Sequence, Tuple

from components import storage, uris
from components.eval_report.names import EXAMPLE_COUNT

STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f0f0f0; } td.name, th.name { text-align: left; }
.meta { color: #555; font-size: 13px; } .meta code { font-size: 12px; }
.verdict { padding: 12px 16px; margin: 16px 0; border-radius: 6px; font-size: 16px; }
.blessed { background: #e6f4ea; border: 1px solid #34a853; }
.not-blessed { background: #fce8e6; border: 1px solid #d93025; }
.pass { color: #188038; font-weight: bold; } .fail { color: #d93025; font-weight: bold; }
.better { color: #188038; } .worse { color: #d93025; }
tr.small td { background: #fff8e1; } .flag { color: #b06000; font-weight: bold; }
tr.regression td { background: #fce8e6; } .ci { color: #666; font-size: 12px; }
.muted { color: #777; }
figure { margin: 16px 0; } figcaption { color: #555; font-size: 13px; }
img { max-width: 100%; } td code { word-break: break-all; }
"""


def number(value: Optional[float]) -> str:
  return "&mdash;" if value is None else f"{value:.4f}"


def _count(value: Optional[float]) -> str:
  return "&mdash;" if value is None else f"{value:g}"


def _diff(value: Optional[float], higher_is_better: Optional[bool]) -> str:
  """A signed diff, green when it is an improvement where the direction is known."""
  if value is None:
    return "&mdash;"
  css = ""
  if higher_is_better is not None and value != 0:
    css = "better" if (value > 0) == higher_is_better else "worse"
  return f'<span class="{css}">{value:+.4f}</span>' if css else f"{value:+.4f}"


def interval(bounds: Optional[Sequence[float]], signed: bool = False) -> str:
  """A 95% interval under its value; nothing when TFMA computed none."""
  if not bounds:
    return ""
  style = "+.4f" if signed else ".4f"
  return f'<br><span class="ci">[{bounds[0]:{style}}, {bounds[1]:{style}}]</span>'


def _verdict(passed: Optional[bool], applied: bool = True) -> str:
  if not applied:
    return '<span class="muted">not applied (no baseline yet)</span>'
  if passed is None:
    return '<span class="fail">NOT CHECKED</span>'
  return '<span class="pass">PASS</span>' if passed else '<span class="fail">FAIL</span>'


def _change_css(verdict: Optional[str]) -> str:
  return {"significantly worse": "worse", "significantly better": "better"}.get(verdict, "")


def _change_sentence(report: dict) -> str:
  """Whether the gated metric's change is within noise, in one sentence."""
  change = report["change"]
  if change is None:
    return ""
  interval = change["diff_ci95"]
  where = (f" (95% interval [{interval[0]:+.4f}, {interval[1]:+.4f}])" if interval else
           " (no interval recorded)")
  return (f'<p>Change of {html.escape(change["metric"])} against the baseline: '
          f'{change["diff"]:+.4f}{where}: '
          f'<span class="{_change_css(change["verdict"])}">{html.escape(change["verdict"])}'
          "</span>. The gate judges the point estimate; a change within noise may "
          "not repeat on new data.</p>")


def table(headers: Sequence[str], rows: List[Tuple[Sequence[str], str]]) -> str:
  """`rows`: (already escaped cells, row CSS class); the first column is the name."""
  head = "".join(f'<th class="name">{h}</th>' if i == 0 else f"<th>{h}</th>"
                 for i, h in enumerate(headers))
  body = "".join(
      f'<tr class="{css}">' + "".join(f'<td class="name">{c}</td>' if i == 0 else f"<td>{c}</td>"
                                      for i, c in enumerate(cells)) + "</tr>"
      for cells, css in rows)
  return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _directions(report: dict) -> dict:
  """Which way is better, for the metrics a threshold says it of."""
  return {t["metric"]: t["higher_is_better"] for t in report["thresholds"]}


def _overall(report: dict) -> str:
  directions = _directions(report)
  has_baseline = report["baseline_model"] is not None
  headers = ["metric", "candidate"] + (["baseline", "difference"] if has_baseline else [])
  rows = []
  for metric in report["overall"]:
    show = _count if metric["name"] == EXAMPLE_COUNT else number
    ci95 = metric["ci95"]
    cells = [html.escape(metric["name"]), show(metric["candidate"]) + interval(ci95["candidate"])]
    if has_baseline:
      cells += [show(metric["baseline"]) + interval(ci95["baseline"]),
                _diff(metric["diff"], directions.get(metric["name"]))
                + interval(ci95["diff"], signed=True)]
    rows.append((cells, ""))
  note = ("<p>No blessed baseline yet: only the absolute thresholds applied.</p>"
          if not has_baseline else _change_sentence(report))
  return ("<p>95% confidence intervals (TFMA's jackknife) under each value.</p>"
          + table(headers, rows) + note)


def _thresholds(report: dict) -> str:
  if not report["thresholds"]:
    return "<p>No thresholds were configured.</p>"
  rows = [([html.escape(t["metric"]), html.escape(t["slice"]),
            "change vs baseline" if t["kind"] == "change" else "absolute value",
            html.escape(t["bound"]), number(t["value"]), _verdict(t["passed"], t["applied"])],
           "")
          for t in report["thresholds"]]
  return table(["metric", "slice", "threshold on", "bound", "value", "result"], rows)


def _slice_change(row: dict, higher: Optional[bool]) -> str:
  change = row["change"]
  if change is None:
    return "&mdash;"
  verdict = html.escape(change["verdict"])
  css = _change_css(change["verdict"])
  return (_diff(change["diff"], higher) + interval(change["diff_ci95"], signed=True)
          + f'<br><span class="{css}">{"REGRESSION" if row["regression"] else verdict}</span>')


def _slices(report: dict) -> str:
  if not report["slices"]:
    return "<p>The evaluation has no slices besides the overall one.</p>"
  primary = report["primary_metric"]["name"]
  higher = report["primary_metric"]["higher_is_better"]
  others = sorted({m["name"] for row in report["slices"] for m in row["metrics"]}
                  - {primary, EXAMPLE_COUNT})
  has_baseline = report["baseline_model"] is not None
  headers = ["slice", "examples", f"{html.escape(primary or '')} (candidate)"]
  headers += ["baseline", "difference"] if has_baseline else []
  headers += [html.escape(name) for name in others]
  rows = []
  for row in report["slices"]:
    by_name = {m["name"]: m for m in row["metrics"]}
    main = by_name.get(primary, {"ci95": {}})
    count = _count(row["example_count"])
    if row["small"]:
      count += f' <span class="flag">small (&lt; {report["small_slice_examples"]})</span>'
    cells = [html.escape(row["slice"]), count,
             number(main.get("candidate")) + interval(main["ci95"].get("candidate"))]
    if has_baseline:
      cells += [number(main.get("baseline")) + interval(main["ci95"].get("baseline")),
                _slice_change(row, higher)]
    cells += [number(by_name.get(name, {}).get("candidate")) for name in others]
    rows.append((cells, "regression" if row["regression"] else "small" if row["small"] else ""))
  small = (f"Slices with fewer than {report['small_slice_examples']} examples are flagged: "
           "their metrics are too noisy to act on.")
  if has_baseline:
    regressions = sum(row["regression"] for row in report["slices"])
    return (f"<p>Candidate against baseline on every slice, worst change of "
            f"{html.escape(primary or '')} first. A slice is a REGRESSION only when the "
            "95% interval of the difference excludes zero on the worse side; "
            f"{regressions} slice(s) regressed. {small}</p>" + table(headers, rows))
  order = "lowest" if higher else "highest"
  return (f"<p>Sorted by slicing feature, then {order} {html.escape(primary or '')} first. "
          f"{small}</p>" + table(headers, rows))


def _publication(report: dict) -> List[str]:
  """Meta lines: the pushed version (or why nothing was pushed), the baseline's version."""
  lines = []
  push = report["push"]
  if push is not None:
    lines.append(f"Pushed: version {html.escape(push['version'] or '?')}"
                 + (f" (<code>{html.escape(push['destination'])}</code>)"
                    if push["destination"] else "")
                 if push["pushed"] else f"Pushed: nothing ({html.escape(push['reason'])})")
  baseline = report["baseline_model"]
  if baseline:
    location = baseline["evaluated_location"] or "(location not recorded)"
    version = (f"served version {html.escape(baseline['version'])}" if baseline["version"]
               else "version not found among the pushed versions")
    lines.append(f"Baseline: blessed model compared with, {version}: "
                 f"<code>{html.escape(location)}</code>")
  else:
    lines.append("Baseline: none (no blessed model yet)")
  return lines + _data_check(report.get("data_check"))


def _data_check(check: Optional[dict]) -> List[str]:
  """The meta line on the data gate's drift check, where it is known."""
  if check is None:
    return []
  if not check["drift_against"]:
    return ["Data: not checked for drift (nothing to compare with)"]
  against = html.escape(check["drift_against"])
  if not check["drift_findings"]:
    return [f"Data: no drift beyond the schema's thresholds from {against}"]
  return [f"Data: drift from {against} <strong>accepted</strong> (--accept-drift): "
          + "; ".join(html.escape(line) for line in check["drift_findings"])]


def _figures(figures: List[Tuple[str, str]]) -> str:
  if not figures:
    return "<p>The evaluation holds no data to plot.</p>"
  return "".join(f'<figure><img alt="{html.escape(title)}" src="{uri}">'
                 f"<figcaption>{html.escape(title)}</figcaption></figure>"
                 for title, uri in figures)


def render(report: dict, figures: List[Tuple[str, str]]) -> str:
  """The whole page: verdict, overall metrics, thresholds, figures, slices."""
  blessing = report["blessing"]
  verdict_css = "blessed" if blessing["blessed"] else "not-blessed"
  verdict = "BLESSED" if blessing["blessed"] else "NOT BLESSED"
  reason = html.escape(blessing["reason"])
  model = report["model"]
  meta = [f"Evaluation: <code>{html.escape(report['evaluation_uri'])}</code>",
          f"Candidate model: <code>{html.escape(model['uri'])}</code>"
          + (f" (artifact {model['id']})" if model["id"] is not None else "")]
  meta += _publication(report)
  return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Evaluation report: {verdict}</title>
<style>{STYLE}</style></head>
<body>
<h1>Evaluation report</h1>
<p class="meta">{"<br>".join(meta)}</p>
<div class="verdict {verdict_css}"><strong>{verdict}</strong>: {reason}</div>
<h2>Overall metrics</h2>
{_overall(report)}
<h2>Thresholds</h2>
{_thresholds(report)}
<h2>Plots</h2>
{_figures(figures)}
<h2>Slices</h2>
{_slices(report)}
</body></html>
"""


def write_with_json(output_dir: str, html_name: str, html_text: str, json_name: str,
                    data: dict) -> Tuple[str, str]:
  """Writes a page and the JSON it was rendered from into `output_dir` (any
  directory or object store); returns (html path, json path). Strict JSON:
  a NaN would make the file unreadable for most JSON parsers."""
  storage.makedirs(output_dir)
  html_path = uris.join(output_dir, html_name)
  json_path = uris.join(output_dir, json_name)
  storage.write_text(json_path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False))
  storage.write_text(html_path, html_text)
  return html_path, json_path
