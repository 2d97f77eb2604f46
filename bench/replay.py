"""Replays a family's real data span after span, as it would have arrived,
and records what each run of the continuous-training loop did.

    .venv/bin/python -m bench.replay --model two_tower [--output-dir outputs]
        [--days 7] [--first-days 175] [--parts 3] [--with-cold] [--accept-drift]
        [--spans N] [--train-steps N] [--min-metric X]

The data is cut into spans first: the real MovieLens-100k by timestamp
(data/movielens/span_cut.py: a first span of `--first-days`, the history an
initial window trains on, then one span per `--days`), the CNN's and the
LSTM's shipped train and eval splits into `--parts` consecutive parts. Then
local_runner.py runs span 1, span 2, ... in turn (`--span N`, each in its own
process, all into OUTPUT/replay/<family>/warm), as a daily run would: drift-checked
against the served model, trained on the family's window warm from it,
judged against it on the span's eval examples, pushed if blessed.
`--with-cold` also runs every span from scratch (`--cold-start`) into
OUTPUT/replay/<family>/cold, to measure what the warm start saves and costs.

Per span, from each run's MLMD records and evaluation report: the window,
where the Trainer started, the drift check, the candidate's and the served
model's headline metric on the span's eval with 95% intervals, the blessing,
the pushed version, Trainer and whole-run seconds; for MovieLens also the
classical anchors' recall@10 on the same window and eval rows
(data/movielens/anchors.py). Written to
OUTPUT/reports/<family>/replay/replay.json and replay.html.
"""
import argparse
import glob
import html
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from tfx.orchestration import metadata as tfx_metadata  # noqa: E402

from components import anomalies_gate, spans, warm_start  # noqa: E402
from components.push_records import NOT_PUSHED_REASON  # noqa: E402
from components.eval_report import page  # noqa: E402
from components.eval_report.report import REPORT_JSON  # noqa: E402
from data.movielens import anchors, span_cut  # noqa: E402
from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT  # noqa: E402
from pipeline import configs  # noqa: E402
from runners import run_summary  # noqa: E402
from runners.layout import OutputLayout  # noqa: E402

LOCAL_RUNNER = os.path.join(REPO, "local_runner.py")
REPLAY_JSON, REPLAY_HTML = "replay.json", "replay.html"
# What the replay reads of each run's MLMD records.
NODES = ("AnomaliesGate", warm_start.NODE_ID, "Trainer", "Evaluator", "Pusher", "EvalReport")
_RUN_ID = re.compile(r"\(run (\S+), logs: (\S+)\)")


def cut_into_spans(family: configs.FamilyConfig, spans_dir: str, days: float,
                   first_days: float, parts: int) -> Dict[int, int]:
  """Writes the family's real data as span-<N>/ folders; returns {span: records}."""
  source = os.path.join(configs.DEFAULT_DATA_ROOT, family.data_subdir)
  if family.example_source is configs.MOVIELENS:
    return span_cut.cut(source, spans_dir, days, first_days)
  counts: Dict[int, int] = {}
  for split in (TRAIN_SPLIT, EVAL_SPLIT):
    files = sorted(glob.glob(os.path.join(source, split, "*")))
    records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    size = len(records) // parts
    for number in range(1, parts + 1):
      path = os.path.join(spans_dir, f"span-{number}", split, f"{split}.tfrecord.gz")
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with tf.io.TFRecordWriter(path, "GZIP") as writer:
        for record in records[(number - 1) * size:number * size]:
          writer.write(record)
      counts[number] = counts.get(number, 0) + size
  return counts


def _metric(report: Optional[dict], name: str) -> Dict[str, Any]:
  """The candidate's and baseline's value of `name` with their 95% intervals."""
  found = next((m for m in (report or {}).get("overall", []) if m["name"] == name), None)
  if found is None:
    return {"candidate": None, "candidate_ci95": None, "served": None, "served_ci95": None}
  return {"candidate": found["candidate"], "candidate_ci95": found["ci95"]["candidate"],
          "served": found["baseline"], "served_ci95": found["ci95"]["baseline"]}


def read_run(family: configs.FamilyConfig, output_dir: str, run_id: str) -> Dict[str, Any]:
  """What one run did, from its MLMD records and its evaluation report."""
  connection = tfx_metadata.sqlite_metadata_connection_config(
      OutputLayout(output_dir).metadata_path)
  runs = run_summary.read_node_runs(connection, family.pipeline_name, list(NODES), run_id)
  custom = run_summary.custom_property
  record: Dict[str, Any] = {"trainer_seconds": runs["Trainer"].seconds,
                            "trainer_state": runs["Trainer"].state}
  gate = runs["AnomaliesGate"].outputs.get("data_check")
  if gate:
    record["drift"] = {
        "against": custom(gate[0], anomalies_gate.DRIFT_AGAINST_KEY),
        "findings": [line for line in (custom(gate[0], anomalies_gate.DRIFT_FINDINGS_KEY)
                                       or "").split("\n") if line],
        "accepted": bool(custom(gate[0], anomalies_gate.DRIFT_ACCEPTED_KEY))}
  base = runs[warm_start.NODE_ID].outputs.get("base_model")
  if base:
    record["warm_from"] = (custom(base[0], warm_start.SERVED_VERSION_KEY)
                           if custom(base[0], warm_start.FOUND_KEY) else None)
  pushed = runs["Pusher"].outputs.get("pushed_model")
  if pushed:
    record["pushed"] = (custom(pushed[0], "pushed_version") if custom(pushed[0], "pushed")
                        else None)
    record["not_pushed_reason"] = custom(pushed[0], NOT_PUSHED_REASON)
  report_artifacts = runs["EvalReport"].outputs.get("report")
  report = None
  if report_artifacts:
    with open(os.path.join(report_artifacts[0].uri, REPORT_JSON), encoding="utf-8") as f:
      report = json.load(f)
    record["blessed"] = report["blessing"]["blessed"]
  record.update(_metric(report, family.headline_metric))
  return record


def run_span(family: configs.FamilyConfig, spans_dir: str, output_dir: str, span: int,
             extra: List[str]) -> Dict[str, Any]:
  """Runs the pipeline on `span` (its window ending there) and reads back what it did."""
  started = time.monotonic()
  result = subprocess.run(
      [sys.executable, LOCAL_RUNNER, "--model", family.name, "--data-dir", spans_dir,
       "--output-dir", output_dir, "--span", str(span), *extra],
      capture_output=True, text=True, check=False, cwd=REPO)
  record: Dict[str, Any] = {"span": span, "exit_status": result.returncode,
                            "run_seconds": time.monotonic() - started}
  window = re.search(r"on (spans? [\d-]+) of", result.stdout)
  record["window"] = window.group(1) if window else None
  found = _RUN_ID.search(result.stdout)
  if result.returncode not in (0, 3) or not found:
    raise RuntimeError(f"span {span}: local_runner.py exited {result.returncode}:\n"
                       f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
  if result.returncode == 3:
    record["stopped"] = result.stderr.strip().splitlines()[-1]
  record.update(read_run(family, output_dir, found.group(1)))
  if family.example_source is configs.MOVIELENS:
    # The classical anchors on the same window and eval rows (recall@10).
    window = spans.resolve(spans_dir, spans.SpanRequest(span, family.span_window))
    record["anchors"] = anchors.compute(spans_dir, window=window)["recall_at_10"]
  return record


def _mean(values) -> Optional[float]:
  values = [v for v in values if v is not None]
  return statistics.fmean(values) if values else None


def summarize(warm: List[dict], cold: Optional[List[dict]]) -> Dict[str, Any]:
  """Over the spans after the first (the first trains cold either way): the
  mean Trainer seconds and headline metric of the warm runs, and of the
  cold ones when measured, with their ratio and difference."""
  later = [r for r in warm if r["span"] > 1]
  summary: Dict[str, Any] = {
      "spans": len(warm),
      "warm_trainer_seconds": _mean(r.get("trainer_seconds") for r in later
                                    if r.get("warm_from")),
      "warm_metric": _mean(r.get("candidate") for r in later),
      "blessed": sum(1 for r in warm if r.get("blessed")),
      "pushed": sum(1 for r in warm if r.get("pushed")),
      "stopped": sum(1 for r in warm if r.get("stopped")),
  }
  if cold is not None:
    cold_later = [r for r in cold if r["span"] > 1]
    summary["cold_trainer_seconds"] = _mean(r.get("trainer_seconds") for r in cold_later)
    summary["cold_metric"] = _mean(r.get("candidate") for r in cold_later)
    if summary["warm_trainer_seconds"] and summary["cold_trainer_seconds"]:
      summary["warm_over_cold_trainer_time"] = (summary["warm_trainer_seconds"]
                                                / summary["cold_trainer_seconds"])
    if summary["warm_metric"] is not None and summary["cold_metric"] is not None:
      summary["warm_minus_cold_metric"] = summary["warm_metric"] - summary["cold_metric"]
  return summary


def _number(value, digits: int = 4) -> str:
  return "-" if value is None else f"{value:.{digits}f}"


def _with_interval(value, interval) -> str:
  if value is None:
    return "-"
  return _number(value) + (f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "")


def _drift_cell(record: dict) -> str:
  drift = record.get("drift") or {}
  if record.get("stopped"):
    return "stopped: " + record["stopped"]
  if drift.get("findings"):
    return ("accepted: " if drift.get("accepted") else "") + "; ".join(drift["findings"])
  return "none" if drift.get("against") else "-"


def render(replay: dict) -> str:
  """The replay page: one row per span, the summary above."""
  metric = replay["metric"]
  cold = {r["span"]: r for r in replay.get("cold") or []}
  headers = ["span", "window", "trained", "drift", f"candidate {metric}",
             f"served {metric}", "blessed", "pushed", "Trainer s", "run s"]
  if cold:
    headers += [f"cold {metric}", "cold Trainer s"]
  anchor_names = sorted({name for r in replay["runs"] for name in r.get("anchors", {})})
  headers += [f"{name} recall@10" for name in anchor_names]
  rows = []
  for r in replay["runs"]:
    cells = [str(r["span"]), r.get("window") or "-",
             f"warm from {r['warm_from']}" if r.get("warm_from") else "cold",
             _drift_cell(r), _with_interval(r.get("candidate"), r.get("candidate_ci95")),
             _with_interval(r.get("served"), r.get("served_ci95")),
             "yes" if r.get("blessed") else "no",
             r.get("pushed") or (r.get("not_pushed_reason") or "-"),
             _number(r.get("trainer_seconds"), 1), _number(r.get("run_seconds"), 1)]
    if cold:
      other = cold.get(r["span"], {})
      cells += [_with_interval(other.get("candidate"), other.get("candidate_ci95")),
                _number(other.get("trainer_seconds"), 1)]
    cells += [_number(r.get("anchors", {}).get(name)) for name in anchor_names]
    rows.append(([html.escape(c) for c in cells], ""))
  summary = replay["summary"]
  lines = [f"{summary['spans']} spans of {html.escape(replay['data'])}; "
           f"{summary['blessed']} blessed, {summary['pushed']} pushed, "
           f"{summary['stopped']} stopped by the data gate.",
           f"After span 1: mean warm Trainer {_number(summary['warm_trainer_seconds'], 1)} s, "
           f"mean candidate {metric} {_number(summary['warm_metric'])}."]
  if "cold_trainer_seconds" in summary:
    lines.append(f"Cold on the same spans: mean Trainer "
                 f"{_number(summary['cold_trainer_seconds'], 1)} s, mean {metric} "
                 f"{_number(summary['cold_metric'])} (warm / cold Trainer time "
                 f"{_number(summary.get('warm_over_cold_trainer_time'), 2)}, warm - cold "
                 f"{metric} {_number(summary.get('warm_minus_cold_metric'))}).")
  return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Replay: {html.escape(replay['family'])}</title>
<style>{page.STYLE}</style></head>
<body>
<h1>Replay of {html.escape(replay['family'])}, span after span</h1>
<p class="meta">{"<br>".join(lines)}</p>
{page.table(headers, rows)}
<p class="meta">Each candidate and the served model are judged on the same eval
examples: the span's own (95% intervals from TFMA's bootstrap). A served
value is missing where nothing was served yet.</p>
</body></html>
"""


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, choices=sorted(configs.FAMILIES))
  parser.add_argument("--output-dir", default="outputs")
  parser.add_argument("--days", type=float, default=7.0,
                      help="MovieLens: the length of each span after the first")
  parser.add_argument("--first-days", type=float, default=175.0,
                      help="MovieLens: the length of the first span (the initial history)")
  parser.add_argument("--parts", type=int, default=3,
                      help="TFRecord families: how many spans their shipped data becomes")
  parser.add_argument("--with-cold", action="store_true",
                      help="also run every span from scratch, to compare")
  parser.add_argument("--accept-drift", action="store_true",
                      help="let drifted spans train (the replay records the findings)")
  parser.add_argument("--spans", type=int, help="replay only the first N spans")
  parser.add_argument("--train-steps", type=int, help="override the family's training steps")
  parser.add_argument("--min-metric", type=float,
                      help="override the minimum value of the family's gated metric")
  args = parser.parse_args(argv)
  family = configs.get_family(args.model)
  root = os.path.abspath(os.path.join(args.output_dir, "replay", family.name))
  spans_dir = os.path.join(root, "spans")
  shutil.rmtree(root, ignore_errors=True)
  counts = cut_into_spans(family, spans_dir, args.days, args.first_days, args.parts)
  extra = ["--accept-drift"] if args.accept_drift else []
  if args.train_steps:
    extra += ["--train-steps", str(args.train_steps)]
  if args.min_metric is not None:
    extra += ["--min-metric", str(args.min_metric)]
  chains = {"warm": (os.path.join(root, "warm"), extra)}
  if args.with_cold:
    chains["cold"] = (os.path.join(root, "cold"), [*extra, "--cold-start"])
  records: Dict[str, List[dict]] = {name: [] for name in chains}
  for span in sorted(counts)[:args.spans]:
    for name, (output_dir, chain_args) in chains.items():
      record = run_span(family, spans_dir, output_dir, span, chain_args)
      records[name].append(record)
      print(f"span {span} ({name}): {json.dumps(record, sort_keys=True)}", flush=True)
  replay = {"family": family.name, "data": os.path.join(configs.DEFAULT_DATA_ROOT,
                                                       family.data_subdir),
            "span_records": counts, "metric": family.headline_metric,
            "runs": records["warm"], "cold": records.get("cold"),
            "summary": summarize(records["warm"], records.get("cold"))}
  out_dir = os.path.join(OutputLayout(os.path.abspath(args.output_dir)).reports_dir(
      family.name), "replay")
  html_path, json_path = page.write_with_json(out_dir, REPLAY_HTML, render(replay),
                                              REPLAY_JSON, replay)
  print(f"Replay: {html_path} ({json_path})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
