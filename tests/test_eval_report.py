"""The evaluation report (components/eval_report) built from real TFMA output.

The CNN tests read the shared run history on a small slice of the digits
(tests/cnn_history.py): a 60-step model (blessed, no baseline), then a
1-step model compared with it (refused by the change threshold). Every value
the reports show is checked against TFMA's own files, read here
independently with tfma.load_eval_result, tfma.load_validation_result and
MLMD. The other-families tests evaluate
prediction tables with real TFMA (analyze_raw_data): one configured as the
LSTM family will be (ROC, calibration, length buckets), one with the
two-tower family's own EvalConfig and RecallAtK metric, one with TFMA's
top-k Recall, to show the report picks its plots from what the evaluation
holds.
Pages are rendered in headless Chromium and must show their figures.
"""
import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow_model_analysis as tfma
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from PIL import Image
from tfx.orchestration import metadata as tfx_metadata
from tfx.types import standard_artifacts

from components.eval_report import names, plots, report
from components.eval_report.component import EvaluationReport
from pipeline import configs, evaluation
from runners import review
from runners.layout import OutputLayout
from tests import e2e_helpers, light_commands
from tests.cnn_history import GOOD_FLOOR

CHROMIUM = "/usr/bin/chromium"
WINDOW = (1280, 4000)
# A pixel is "coloured" when its channels differ this much: figure marks are;
# text, table rules and the page's pale backgrounds are not.
CHROMA = 60


@pytest.fixture
def cnn_runs(cnn_history):
  """Output dir of the two evaluated runs: the blessed good model, then the
  worse one (its re-runs are cached and evaluate nothing new)."""
  return cnn_history.output_dir, cnn_history.good.stdout, cnn_history.worse.stdout


def _store(output_dir):
  return metadata_store.MetadataStore(tfx_metadata.sqlite_metadata_connection_config(
      OutputLayout(output_dir).metadata_path))


def _recorded_reports(output_dir):
  """[(report artifact, {input key: artifact})] oldest first, read from MLMD."""
  store = _store(output_dir)
  recorded = []
  for artifact in sorted(store.get_artifacts_by_type(EvaluationReport.TYPE_NAME),
                         key=lambda a: a.id):
    # The execution that wrote it; a cached re-run records an output event to
    # the same artifact later.
    producer = min(e.execution_id for e in store.get_events_by_artifact_ids([artifact.id])
                   if e.type == metadata_store_pb2.Event.OUTPUT)
    inputs = [e for e in store.get_events_by_execution_ids([producer])
              if e.type == metadata_store_pb2.Event.INPUT]
    by_id = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in inputs])}
    recorded.append((artifact, {e.path.steps[0].key: by_id[e.artifact_id] for e in inputs}))
  return recorded


def _load_json(report_dir):
  with open(os.path.join(report_dir, report.REPORT_JSON)) as f:
    return json.load(f)


def _tfma_overall(uri, model_name):
  """{metric: value} of the overall slice as TFMA stored it (diffs as `<name>_diff`)."""
  result = tfma.load_eval_result(uri, model_name=model_name)
  (metrics,) = [m for key, m in result.slicing_metrics if key == ()]
  return {name: e2e_helpers.tfma_point_value(value) for name, value in metrics[""][""].items()
          if "doubleValue" in value or "boundedValue" in value}


def _tfma_slice_values(uri, model_name, metric):
  """{slice: (value, (lower, upper) or None)} of one metric as TFMA stored it."""
  result = tfma.load_eval_result(uri, model_name=model_name)
  found = {}
  for key, metrics in result.slicing_metrics:
    value = metrics[""][""].get(metric)
    if value is None:
      continue
    bounded = value.get("boundedValue")
    found[tfma.slicer.stringify_slice_key(key)] = (
        (bounded["value"], (bounded["lowerBound"], bounded["upperBound"])) if bounded
        else (value["doubleValue"], None))
  return found


def _tfma_counts(uri, model_name):
  result = tfma.load_eval_result(uri, model_name=model_name)
  return {tfma.slicer.stringify_slice_key(key): m[""][""]["example_count"]["doubleValue"]
          for key, m in result.slicing_metrics if key != ()}


def _screenshot(html_path, tmp_path):
  """The page as headless Chromium draws it, as an RGB array."""
  if not os.path.exists(CHROMIUM):
    pytest.fail(f"{CHROMIUM} is missing: the report tests render pages in headless "
                "Chromium. Install it with `make chromium` (apt-get install -y chromium).")
  png = str(tmp_path / "page.png")
  profile = tmp_path / "chromium-profile"
  result = subprocess.run(
      [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
       "--no-first-run", "--disable-background-networking", "--disable-component-update",
       "--disable-sync", f"--user-data-dir={profile}", f"--screenshot={png}",
       f"--window-size={WINDOW[0]},{WINDOW[1]}", f"file://{html_path}"],
      capture_output=True, text=True, timeout=180, check=False)
  assert result.returncode == 0 and os.path.isfile(png), result.stderr
  shutil.rmtree(profile, ignore_errors=True)
  return np.asarray(Image.open(png).convert("RGB")).astype(int)


def _coloured(pixels):
  return int(((pixels.max(axis=2) - pixels.min(axis=2)) > CHROMA).sum())


def _embedded_images(page):
  return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")).astype(int)
          for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def _check_page_renders(html_path, tmp_path, figures):
  """The page is self-contained and Chromium draws it with all its figures."""
  with open(html_path, encoding="utf-8") as f:
    page = f.read()
  assert not re.search(r"https?://", page)
  assert "<script" not in page and "<link" not in page
  sources = re.findall(r'src="([^"]*)"', page)
  assert len(sources) == figures and all(s.startswith("data:image/png;base64,") for s in sources)
  images = _embedded_images(page)
  for image in images:  # Each figure holds a drawing, not an empty canvas.
    assert image.std() > 10 and _coloured(image) > 500
  shot = _screenshot(html_path, tmp_path)
  assert shot.shape[:2] == (WINDOW[1], WINDOW[0])
  non_white = (shot < 245).any(axis=2)
  assert non_white.mean() > 0.01 and shot.std() > 5
  assert not non_white[-100:].any(), "the page is taller than the screenshot window"
  # Figures are shown at their own size, so the page must hold (nearly) all of
  # their coloured pixels; a figure that failed to draw would take its share away.
  assert _coloured(shot) >= 0.95 * sum(_coloured(image) for image in images)


@pytest.mark.e2e
def test_each_run_records_a_report_of_its_evaluation_in_mlmd(cnn_runs):
  output_dir, first_stdout, second_stdout = cnn_runs
  recorded = _recorded_reports(output_dir)
  assert len(recorded) == 2
  for (artifact, inputs), stdout in zip(recorded, (first_stdout, second_stdout)):
    assert set(inputs) == {"evaluation", "blessing", "model", "pushed_model", "data_check"}
    html_path = os.path.join(artifact.uri, report.REPORT_HTML)
    assert os.path.isfile(html_path)
    assert f"Report: {html_path}" in stdout
    saved = _load_json(artifact.uri)
    assert saved["evaluation_uri"] == inputs["evaluation"].uri
    assert saved["model"] == {"uri": inputs["model"].uri, "id": inputs["model"].id,
                              "evaluated_location": os.path.join(inputs["model"].uri,
                                                                 "Format-Serving")}
    blessed = inputs["blessing"].custom_properties["blessed"].int_value
    assert artifact.custom_properties["blessed"].int_value == blessed


@pytest.mark.e2e
def test_report_shows_tfma_metrics_of_candidate_baseline_and_difference(cnn_runs):
  output_dir, _, _ = cnn_runs
  artifact, inputs = _recorded_reports(output_dir)[-1]
  uri = inputs["evaluation"].uri
  saved = _load_json(artifact.uri)
  with open(os.path.join(artifact.uri, report.REPORT_HTML), encoding="utf-8") as f:
    page = f.read()
  candidate, baseline = _tfma_overall(uri, "candidate"), _tfma_overall(uri, "baseline")
  names = {n for n in candidate if not n.endswith("_diff")}
  assert {m["name"] for m in saved["overall"]} == names
  for metric in saved["overall"]:
    name = metric["name"]
    assert metric["candidate"] == pytest.approx(candidate[name])
    assert metric["baseline"] == pytest.approx(baseline[name])
    assert metric["diff"] == pytest.approx(candidate[f"{name}_diff"])
  accuracy = next(m for m in saved["overall"] if m["name"] == "sparse_categorical_accuracy")
  for role in ("candidate", "baseline"):
    lower, upper = accuracy["ci95"][role]
    assert (f'<td>{accuracy[role]:.4f}<br><span class="ci">[{lower:.4f}, {upper:.4f}]</span>'
            "</td>") in page
  assert f"{accuracy['diff']:+.4f}" in page
  # Per slice: TFMA's example counts, small slices flagged, worst slice first.
  counts = _tfma_counts(uri, "candidate")
  assert {row["slice"]: row["example_count"] for row in saved["slices"]} == counts
  for row in saved["slices"]:
    assert row["small"] == (counts[row["slice"]] < report.SMALL_SLICE_EXAMPLES)
  assert page.count('class="flag"') == sum(row["small"] for row in saved["slices"]) > 0
  # With a baseline: significant regressions first, then the worst change first.
  order = [(not row["regression"], row["change"]["diff"]) for row in saved["slices"]]
  assert order == sorted(order)
  diffs = _tfma_slice_values(uri, "candidate", "sparse_categorical_accuracy_diff")
  assert {row["slice"]: row["change"]["diff"] for row in saved["slices"]} == pytest.approx(
      {name: value for name, (value, _) in diffs.items() if name != "Overall"})


@pytest.mark.e2e
def test_thresholds_and_blessing_match_tfma_validation_and_the_blessing(cnn_runs):
  output_dir, _, _ = cnn_runs
  (first, first_inputs), (second, second_inputs) = _recorded_reports(output_dir)
  # First run: no baseline, only the absolute floor, blessed.
  saved = _load_json(first.uri)
  assert tfma.load_validation_result(first_inputs["evaluation"].uri).validation_ok
  assert first_inputs["blessing"].custom_properties["blessed"].int_value == 1
  assert saved["blessing"] == {"blessed": True, "reason": "every threshold passed"}
  assert saved["baseline_model"] is None
  # TFX ran without the change threshold (no baseline yet): shown as not applied.
  assert [(t["kind"], t["bound"], t["passed"], t["applied"]) for t in saved["thresholds"]] == [
      ("value", f">= {GOOD_FLOOR}", True, True), ("change", "change >= -0.01", None, False)]
  with open(os.path.join(first.uri, report.REPORT_HTML), encoding="utf-8") as f:
    assert f.read().count("not applied (no baseline yet)") == 1
  # Second run: above the floor (0) but far below the baseline, so not blessed.
  uri = second_inputs["evaluation"].uri
  saved = _load_json(second.uri)
  validation = tfma.load_validation_result(uri)
  assert not validation.validation_ok
  assert second_inputs["blessing"].custom_properties["blessed"].int_value == 0
  assert saved["blessing"]["blessed"] is False
  (failure,) = [f for s in validation.metric_validations_per_slice for f in s.failures]
  assert failure.metric_key.is_diff
  assert f"= {failure.metric_value.double_value.value:.4f} fails change >= -0.01" in (
      saved["blessing"]["reason"])
  candidate = _tfma_overall(uri, "candidate")
  by_kind = {t["kind"]: t for t in saved["thresholds"]}
  assert by_kind["value"]["passed"] is True
  assert by_kind["value"]["value"] == pytest.approx(candidate["sparse_categorical_accuracy"])
  assert by_kind["change"]["passed"] is False
  assert by_kind["change"]["value"] == pytest.approx(
      candidate["sparse_categorical_accuracy_diff"])
  with open(os.path.join(second.uri, report.REPORT_HTML), encoding="utf-8") as f:
    page = f.read()
  assert "NOT BLESSED" in page and page.count(">PASS<") == 1 and page.count(">FAIL<") == 1


@pytest.mark.e2e
def test_cnn_reports_render_in_chromium_with_confusion_matrix_and_slices(cnn_runs, tmp_path):
  output_dir, _, _ = cnn_runs
  for artifact, inputs in _recorded_reports(output_dir):
    saved = _load_json(artifact.uri)
    kinds = {kind for key, plots in tfma.load_eval_result(
        inputs["evaluation"].uri, model_name=("candidate" if saved["baseline_model"] else ""))
        .plots if key == () for kind in plots[""][""]}
    assert kinds == {"multiClassConfusionMatrixAtThresholds"}
    assert saved["plots"] == ["Confusion matrix", "sparse_categorical_accuracy by label"]
    _check_page_renders(os.path.join(artifact.uri, report.REPORT_HTML), tmp_path,
                        len(saved["plots"]))


def _review(capsys, output_dir, *options) -> subprocess.CompletedProcess:
  """`python -m runners.review --model cnn` run through its main() in this
  process, which has TFMA loaded already (tests/test_quiet_startup.py runs
  the command as a process)."""
  argv = ["--model", "cnn", "--output-dir", output_dir, *options]
  capsys.readouterr()
  returncode = review.main(argv)
  out, err = capsys.readouterr()
  return subprocess.CompletedProcess(argv, returncode, out, err)


@pytest.mark.e2e
def test_review_prints_the_latest_report_and_its_summary(cnn_runs, capsys):
  output_dir, _, _ = cnn_runs
  artifact, inputs = _recorded_reports(output_dir)[-1]
  result = _review(capsys, output_dir)
  assert result.returncode == 0, result.stdout + result.stderr
  lines = result.stdout.splitlines()
  assert f"Report: {os.path.join(artifact.uri, report.REPORT_HTML)}" in lines
  assert f"Source: recorded by the pipeline (EvaluationReport artifact {artifact.id})" in lines
  candidate = _tfma_overall(inputs["evaluation"].uri, "candidate")
  baseline = _tfma_overall(inputs["evaluation"].uri, "baseline")
  name = "sparse_categorical_accuracy"
  assert any(line.split() == [name, f"{candidate[name]:.4f}", "baseline",
                              f"{baseline[name]:.4f}", "diff", f"{candidate[name + '_diff']:+.4f}"]
             for line in lines)
  assert any(line.startswith("  PASS") and ": value " in line for line in lines)
  assert any(line.startswith("  FAIL") and "change vs baseline" in line for line in lines)
  assert any(line.startswith("Blessed: NO (") for line in lines)
  (served,) = e2e_helpers.pushed_versions(e2e_helpers.serving_dir(output_dir, "cnn"))
  assert (f"Served: NO, version {served} is served, not this model "
          "(--served shows its evaluation).") in lines


@pytest.mark.e2e
def test_review_regenerates_the_report_when_none_is_recorded(cnn_runs, tmp_path, capsys):
  output_dir, _, _ = cnn_runs
  artifact, inputs = _recorded_reports(output_dir)[-1]
  # A copy of MLMD whose report artifacts are gone (as after garbage collection).
  shutil.copy(OutputLayout(output_dir).metadata_path, OutputLayout(str(tmp_path)).metadata_path)
  shutil.copytree(OutputLayout(output_dir).serving_root, OutputLayout(str(tmp_path)).serving_root)
  store = _store(str(tmp_path))
  reports = store.get_artifacts_by_type(EvaluationReport.TYPE_NAME)
  for gone in reports:
    gone.state = metadata_store_pb2.Artifact.DELETED
  store.put_artifacts(reports)
  result = _review(capsys, str(tmp_path))
  assert result.returncode == 0, result.stdout + result.stderr
  regenerated = (Path(OutputLayout(str(tmp_path)).reports_dir("cnn"))
                 / f"evaluation-{inputs['evaluation'].id}")
  assert f"Report: {regenerated / report.REPORT_HTML}" in result.stdout.splitlines()
  assert "Source: regenerated from evaluation artifact" in result.stdout
  # The same report, but for the data gate's check, which only EvalReport is given.
  regenerated_report, recorded_report = _load_json(str(regenerated)), _load_json(artifact.uri)
  assert regenerated_report.pop("data_check") is None
  assert recorded_report.pop("data_check")["drift_against"] == "the reference statistics"
  assert regenerated_report == recorded_report
  # Written once: the next look reads it back, without loading TFMA.
  written = os.path.getmtime(regenerated / report.REPORT_JSON)
  again, heavy = light_commands.run(
      "runners.review", ["--model", "cnn", "--output-dir", str(tmp_path)])
  assert again.returncode == 0, again.stderr
  assert "Source: regenerated from evaluation artifact" in again.stdout
  assert heavy == [] and os.path.getmtime(regenerated / report.REPORT_JSON) == written


@pytest.mark.e2e
def test_review_reads_what_runs_recorded_without_tensorflow_or_tfma(cnn_runs):
  """Showing, listing and comparing load nothing heavy; drawing the history
  page loads matplotlib alone. Each runs as a user runs it."""
  output_dir, _, _ = cnn_runs
  (_, first_inputs), (_, second_inputs) = _recorded_reports(output_dir)
  ids = [str(first_inputs["evaluation"].id), str(second_inputs["evaluation"].id)]
  for options, loaded in (([], []), (["--list"], []), (["--served"], []),
                          (["--evaluation", ids[0]], []), (["--compare", *ids], []),
                          (["--history"], ["matplotlib"])):
    result, heavy = light_commands.run(
        "runners.review", ["--model", "cnn", "--output-dir", output_dir, *options])
    assert result.returncode == 0, (options, result.stderr)
    assert heavy == loaded, options


@pytest.mark.e2e
def test_an_evaluation_whose_files_are_all_gone_is_named_and_listed_without_metric(
    cnn_runs, tmp_path, capsys):
  output_dir, _, _ = cnn_runs
  _, inputs = _recorded_reports(output_dir)[-1]
  shutil.copy(OutputLayout(output_dir).metadata_path, OutputLayout(str(tmp_path)).metadata_path)
  store = _store(str(tmp_path))
  reports = store.get_artifacts_by_type(EvaluationReport.TYPE_NAME)
  for gone in reports:
    gone.state = metadata_store_pb2.Artifact.DELETED
  (evaluation,) = store.get_artifacts_by_id([inputs["evaluation"].id])
  evaluation.uri = str(tmp_path / "garbage-collected")
  store.put_artifacts([*reports, evaluation])
  shown = _review(capsys, str(tmp_path))
  assert (shown.returncode, shown.stdout) == (1, "")
  assert shown.stderr == (f"Evaluation {evaluation.id} has no report and its Evaluator output "
                          f"is gone ({evaluation.uri}): nothing to show.\n")
  listed = _review(capsys, str(tmp_path), "--list")
  assert listed.returncode == 0, listed.stderr
  rows = [line.split() for line in listed.stdout.splitlines()[2:]]
  assert rows[0][0] == str(evaluation.id) and rows[0][5] == "-"  # id, time (3), model, value
  assert rows[1][5] != "-"  # the other evaluation, regenerated from its files


def _served_version(output_dir):
  (version,) = e2e_helpers.pushed_versions(e2e_helpers.serving_dir(output_dir, "cnn"))
  return version


@pytest.mark.e2e
def test_every_metric_carries_tfma_confidence_intervals_around_its_value(cnn_runs):
  output_dir, _, _ = cnn_runs
  for artifact, inputs in _recorded_reports(output_dir):
    saved = _load_json(artifact.uri)
    uri = inputs["evaluation"].uri
    roles = [("candidate", "candidate" if saved["baseline_model"] else "")]
    if saved["baseline_model"]:
      roles += [("baseline", "baseline"), ("diff", "candidate")]
    sliced = [("Overall", saved["overall"])] + [(r["slice"], r["metrics"])
                                                for r in saved["slices"]]
    checked = 0
    for slice_name, metrics in sliced:
      for metric in metrics:
        if metric["name"] == "example_count":  # A count: TFMA gives it no interval.
          assert metric["ci95"]["candidate"] is None
          continue
        for role, model_name in roles:
          tfma_name = metric["name"] + ("_diff" if role == "diff" else "")
          value, bounds = _tfma_slice_values(uri, model_name, tfma_name)[slice_name]
          lower, upper = metric["ci95"][role]
          assert (lower, upper) == pytest.approx(bounds)
          assert metric[role] == pytest.approx(value)
          assert lower - 1e-9 <= metric[role] <= upper + 1e-9
          checked += 1
    assert checked >= len(sliced) * len(roles)


@pytest.mark.e2e
def test_report_names_the_pushed_version_and_the_baseline_version(cnn_runs):
  output_dir, _, _ = cnn_runs
  (first, first_inputs), (second, _) = _recorded_reports(output_dir)
  version = _served_version(output_dir)
  saved = _load_json(first.uri)
  assert saved["push"] == {"pushed": True, "version": version, "reason": None,
                           "destination": os.path.join(
                               e2e_helpers.serving_dir(output_dir, "cnn"), version)}
  with open(os.path.join(first.uri, report.REPORT_HTML), encoding="utf-8") as f:
    assert f"Pushed: version {version}" in f.read()
  saved = _load_json(second.uri)
  assert saved["push"]["pushed"] is False
  assert saved["push"]["reason"] == "the model was not blessed"
  assert saved["baseline_model"]["version"] == version
  assert saved["baseline_model"]["model_uri"] == first_inputs["model"].uri
  with open(os.path.join(second.uri, report.REPORT_HTML), encoding="utf-8") as f:
    page = f.read()
  assert "Pushed: nothing (the model was not blessed)" in page
  assert f"served version {version}" in page


@pytest.mark.e2e
def test_report_says_whether_the_gated_change_is_within_noise(cnn_runs):
  output_dir, _, _ = cnn_runs
  artifact, inputs = _recorded_reports(output_dir)[-1]
  saved = _load_json(artifact.uri)
  diff, (lower, upper) = _tfma_slice_values(
      inputs["evaluation"].uri, "candidate", "sparse_categorical_accuracy_diff")["Overall"]
  change = saved["change"]
  assert change["metric"] == "sparse_categorical_accuracy"
  assert change["diff"] == pytest.approx(diff)
  assert change["diff_ci95"] == pytest.approx([lower, upper])
  expected = ("within noise" if lower <= 0 <= upper else
              "significantly better" if lower > 0 else "significantly worse")
  assert change["verdict"] == expected == "significantly worse"  # a 1-step model
  with open(os.path.join(artifact.uri, report.REPORT_HTML), encoding="utf-8") as f:
    assert f"{diff:+.4f} (95% interval [{lower:+.4f}, {upper:+.4f}])" in f.read()


@pytest.mark.e2e
def test_review_lists_picks_and_says_what_is_served(cnn_runs, capsys):
  output_dir, _, _ = cnn_runs
  (_, first_inputs), (_, second_inputs) = _recorded_reports(output_dir)
  first_id, second_id = first_inputs["evaluation"].id, second_inputs["evaluation"].id
  version = _served_version(output_dir)
  listed = _review(capsys, output_dir, "--list")
  assert listed.returncode == 0, listed.stdout + listed.stderr
  rows = [line.split() for line in listed.stdout.splitlines()[2:]]
  assert [row[0] for row in rows] == [str(second_id), str(first_id)]
  assert rows[1][-3:] == [version, "<-", "served"] and "served" not in rows[0]
  for options, shown_id, served_line in (
      (["--evaluation", str(first_id)], first_id,
       f"Served: yes, this model is served now as version {version}."),
      (["--served"], first_id, f"Served: yes, this model is served now as version {version}."),
      (["--evaluation", str(second_id)], second_id,
       f"Served: NO, version {version} is served, not this model "
       "(--served shows its evaluation).")):
    result = _review(capsys, output_dir, *options)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"Evaluation: {shown_id} (") for line in lines)
    assert served_line in lines
  missing = _review(capsys, output_dir, "--evaluation", "999999")
  assert missing.returncode == 1 and "No evaluation 999999" in missing.stderr


@pytest.mark.e2e
def test_history_lists_both_runs_in_order_with_the_served_version(cnn_runs, tmp_path, capsys):
  output_dir, _, _ = cnn_runs
  recorded = _recorded_reports(output_dir)
  version = _served_version(output_dir)
  result = _review(capsys, output_dir, "--history")
  assert result.returncode == 0, result.stdout + result.stderr
  history_dir = Path(OutputLayout(output_dir).reports_dir("cnn")) / "history"
  assert f"History: {history_dir / 'history.html'}" in result.stdout.splitlines()
  with open(history_dir / "history.json", encoding="utf-8") as f:
    saved = json.load(f)
  assert saved["served_version"] == version
  assert saved["metric"] == "sparse_categorical_accuracy"
  entries = saved["evaluations"]
  assert [e["evaluation_id"] for e in entries] == [i["evaluation"].id for _, i in recorded]
  assert [e["model_id"] for e in entries] == [i["model"].id for _, i in recorded]
  assert [e["blessed"] for e in entries] == [True, False]
  assert [e["pushed_version"] for e in entries] == [version, None]
  assert [e["served"] for e in entries] == [True, False]
  assert entries[1]["push_reason"] == "the model was not blessed"
  for entry, (artifact, inputs) in zip(entries, recorded):
    model_name = "candidate" if entry["diff"] is not None else ""
    value, bounds = _tfma_slice_values(inputs["evaluation"].uri, model_name,
                                       "sparse_categorical_accuracy")["Overall"]
    assert entry["value"] == pytest.approx(value)
    assert entry["ci95"] == pytest.approx(list(bounds))
    assert entry["report"] == os.path.join(artifact.uri, report.REPORT_HTML)
  assert entries[1]["diff"] == pytest.approx(_tfma_slice_values(
      recorded[1][1]["evaluation"].uri, "candidate",
      "sparse_categorical_accuracy_diff")["Overall"][0])
  _check_page_renders(str(history_dir / "history.html"), tmp_path, 1)


@pytest.mark.e2e
def test_compare_shows_a_pushed_version_and_an_evaluation_side_by_side(cnn_runs, tmp_path, capsys):
  output_dir, _, _ = cnn_runs
  (_, first_inputs), (_, second_inputs) = _recorded_reports(output_dir)
  version = _served_version(output_dir)
  second_id = str(second_inputs["evaluation"].id)
  result = _review(capsys, output_dir, "--compare", version, second_id)
  assert result.returncode == 0, result.stdout + result.stderr
  compare_dir = Path(OutputLayout(output_dir).reports_dir("cnn")) / f"compare-{version}-{second_id}"
  with open(compare_dir / "compare.json", encoding="utf-8") as f:
    saved = json.load(f)
  assert saved["a"]["evaluation_id"] == first_inputs["evaluation"].id
  assert saved["a"]["version"] == version and saved["b"]["version"] is None
  assert saved["b"]["evaluation_id"] == second_inputs["evaluation"].id
  # The second run was evaluated against the first model: B - A is TFMA's own diff.
  assert saved["tfma_diff_source"] == "b evaluated against a as its baseline"
  overall = next(s for s in saved["slices"] if s["slice"] == "Overall")
  row = next(m for m in overall["metrics"] if m["name"] == "sparse_categorical_accuracy")
  first_value = _tfma_slice_values(first_inputs["evaluation"].uri, "",
                                   "sparse_categorical_accuracy")["Overall"][0]
  second = _tfma_slice_values(second_inputs["evaluation"].uri, "candidate",
                              "sparse_categorical_accuracy")["Overall"][0]
  diff, bounds = _tfma_slice_values(second_inputs["evaluation"].uri, "candidate",
                                    "sparse_categorical_accuracy_diff")["Overall"]
  assert (row["a"], row["b"]) == pytest.approx((first_value, second))
  assert row["tfma_diff"] == pytest.approx(diff)
  assert row["tfma_diff_ci95"] == pytest.approx(list(bounds))
  unknown = _review(capsys, output_dir, "--compare", version, "999999")
  assert unknown.returncode == 1 and "999999: no evaluation" in unknown.stderr
  _check_page_renders(str(compare_dir / "compare.html"), tmp_path, 0)


def _scores_by_length_config(auc_floor, reported, options=None):
  """A TFMA config over a frame's candidate_score / baseline_score columns:
  AUC gated at `auc_floor` on the overall slice, `reported` metrics, slices by
  length_bucket, like the LSTM family's (its AUC on 1,000 thresholds too)."""
  auc_gate = tfma.PerSliceMetricThreshold(
      slicing_specs=[tfma.SlicingSpec()],
      threshold=tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(
          lower_bound={"value": auc_floor})))
  return tfma.EvalConfig(
      model_specs=[
          tfma.ModelSpec(name="candidate", label_key="label", prediction_key="candidate_score"),
          tfma.ModelSpec(name="baseline", label_key="label", prediction_key="baseline_score",
                         is_baseline=True)],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="AUC", config=configs.AUC_THRESHOLDS_CONFIG,
                            per_slice_thresholds=[auc_gate])]
          + [tfma.MetricConfig(class_name=name) for name in reported])],
      slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["length_bucket"])],
      options=options)


def _binary_eval(output_path):
  """Real TFMA evaluation configured like the LSTM family: AUC gate, binary
  accuracy, ROC and calibration plots, length-bucket slices, a baseline."""
  rng = np.random.default_rng(7)
  n = 600
  label = rng.integers(0, 2, n).astype(float)
  frame = pd.DataFrame({
      "label": label,
      "candidate_score": np.clip(0.35 * label + 0.65 * rng.random(n), 0, 1),
      "baseline_score": np.clip(0.15 * label + 0.85 * rng.random(n), 0, 1),
      "length_bucket": rng.choice(["short", "medium", "long"], n, p=[0.5, 0.46, 0.04]),
  })
  config = _scores_by_length_config(
      auc_floor=0.6, reported=("BinaryAccuracy", "ConfusionMatrixPlot", "CalibrationPlot",
                               "ExampleCount"))
  tfma.analyze_raw_data(frame, config, output_path=output_path)
  return output_path


@pytest.mark.integration
def test_binary_classifier_report_has_roc_calibration_and_flagged_small_bucket(tmp_path):
  uri = _binary_eval(str(tmp_path / "evaluation"))
  html_path, _ = report.write(str(tmp_path / "report"), uri, True, "lstm-model", None)
  saved = _load_json(str(tmp_path / "report"))
  assert saved["plots"] == ["ROC curve", "Calibration", "auc by length_bucket"]
  candidate, baseline = _tfma_overall(uri, "candidate"), _tfma_overall(uri, "baseline")
  auc = next(m for m in saved["overall"] if m["name"] == "auc")
  assert (auc["candidate"], auc["baseline"], auc["diff"]) == pytest.approx(
      (candidate["auc"], baseline["auc"], candidate["auc_diff"]))
  (threshold,) = saved["thresholds"]
  assert threshold["passed"] is (candidate["auc"] >= 0.6)
  counts = _tfma_counts(uri, "candidate")
  assert {r["slice"] for r in saved["slices"] if r["small"]} == {
      s for s, c in counts.items() if c < report.SMALL_SLICE_EXAMPLES} == {"length_bucket:long"}
  _check_page_renders(html_path, tmp_path, len(saved["plots"]))


@pytest.mark.integration
def test_top_k_recall_metrics_give_a_recall_at_k_curve(tmp_path):
  """Configured like the two-tower family: recall@K of ranked item scores."""
  rng = np.random.default_rng(3)
  n, items = 300, 20
  label = rng.integers(0, items, n)
  scores = rng.random((n, items))
  scores[np.arange(n), label] += rng.random(n)
  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key="label", prediction_key="scores")],
      metrics_specs=[tfma.MetricsSpec(metrics=[
          tfma.MetricConfig(class_name="Recall", config=json.dumps({"top_k": k,
                                                                    "name": f"recall@{k}"}))
          for k in (1, 5, 10)] + [tfma.MetricConfig(class_name="ExampleCount")])],
      slicing_specs=[tfma.SlicingSpec()])
  uri = str(tmp_path / "evaluation")
  tfma.analyze_raw_data(pd.DataFrame({"label": label, "scores": list(scores)}), config,
                        output_path=uri)
  html_path, _ = report.write(str(tmp_path / "report"), uri, False, "two-tower-model", None)
  saved = _load_json(str(tmp_path / "report"))
  assert saved["plots"] == ["recall@K"]
  recalls = {m["name"]: m["candidate"] for m in saved["overall"] if m["name"] != "example_count"}
  assert set(recalls) == {"recall@1", "recall@5", "recall@10"}
  assert recalls["recall@1"] < recalls["recall@5"] < recalls["recall@10"]
  tfma_result = tfma.load_eval_result(uri)
  (overall,) = [m for key, m in tfma_result.slicing_metrics if key == ()]
  for k in (1, 5, 10):
    assert recalls[f"recall@{k}"] == pytest.approx(
        overall[""][f"topK:{k}"][f"recall@{k}"]["doubleValue"])
  _check_page_renders(html_path, tmp_path, 1)


@pytest.mark.integration
def test_two_tower_family_recall_at_k_metrics_give_a_recall_curve(tmp_path):
  """The two-tower family's own RecallAtK metrics over the scoring
  signature's `rank` output, on ranks TFMA reads from a table (the gated
  lift needs the signature's second output, `popular_rank`: the e2e run
  checks it)."""
  config = evaluation.build_eval_config(configs.TWO_TOWER)
  for spec in config.metrics_specs:
    kept = [m for m in spec.metrics if m.class_name in ("RecallAtK", "ExampleCount")]
    for metric in kept:  # The gate's change threshold needs a baseline; a table has none.
      metric.ClearField("per_slice_thresholds")
    del spec.metrics[:]
    spec.metrics.extend(kept)
  del config.model_specs[:]
  config.model_specs.add(label_key="label", prediction_key="rank")
  ranks = np.random.default_rng(5).geometric(0.08, 400) - 1
  uri = str(tmp_path / "evaluation")
  tfma.analyze_raw_data(pd.DataFrame({"rank": ranks.astype(float), "label": 0.0}), config,
                        output_path=uri)
  html_path, _ = report.write(str(tmp_path / "report"), uri, True, "two-tower-model", None)
  saved = _load_json(str(tmp_path / "report"))
  assert saved["plots"] == ["recall@K"]
  recalls = {m["name"]: m["candidate"] for m in saved["overall"] if m["name"] != "example_count"}
  assert set(recalls) == {f"recall_at_{k}" for k in (1, 5, 10, 20, 50)}
  for k in (1, 5, 10, 20, 50):  # TFMA's value is the share of ranks below K.
    assert recalls[f"recall_at_{k}"] == pytest.approx(float(np.mean(ranks < k)))
  _check_page_renders(html_path, tmp_path, 1)


@pytest.mark.integration
def test_slice_comparison_flags_only_changes_whose_interval_excludes_zero(tmp_path):
  """TFMA's jackknife intervals on a candidate that is clearly worse on one
  length bucket, clearly better on another, on a third too small to say."""
  rng = np.random.default_rng(11)
  buckets = np.array(["short"] * 400 + ["medium"] * 400 + ["long"] * 20)
  label = rng.integers(0, 2, len(buckets)).astype(float)
  strong = np.clip(0.5 * label + 0.5 * rng.random(len(buckets)), 0, 1)
  weak = np.clip(0.1 * label + 0.9 * rng.random(len(buckets)), 0, 1)
  frame = pd.DataFrame({
      "label": label, "length_bucket": buckets,
      "candidate_score": np.where(buckets == "short", weak, strong),
      "baseline_score": np.where(buckets == "short", strong, weak)})
  # The families' own confidence interval options.
  config = _scores_by_length_config(
      auc_floor=0.5, reported=("ExampleCount",),
      options=evaluation.build_eval_config(configs.LSTM).options)
  uri = str(tmp_path / "evaluation")
  tfma.analyze_raw_data(frame, config, output_path=uri)
  html_path, _ = report.write(str(tmp_path / "report"), uri, True, "lstm-model", None)
  saved = _load_json(str(tmp_path / "report"))
  diffs = _tfma_slice_values(uri, "candidate", "auc_diff")
  by_slice = {row["slice"]: row for row in saved["slices"]}
  for name, row in by_slice.items():
    value, (lower, upper) = diffs[name]
    assert row["change"]["diff"] == pytest.approx(value)
    assert row["change"]["diff_ci95"] == pytest.approx([lower, upper])
    assert row["regression"] is (upper < 0 and not row["small"])
  assert by_slice["length_bucket:short"]["change"]["verdict"] == "significantly worse"
  assert by_slice["length_bucket:medium"]["change"]["verdict"] == "significantly better"
  assert by_slice["length_bucket:long"]["change"]["verdict"] == "too small to say"
  assert saved["slices"][0]["slice"] == "length_bucket:short"  # the regression first
  rest = [row["change"]["diff"] for row in saved["slices"][1:]]
  assert rest == sorted(rest)
  with open(html_path, encoding="utf-8") as f:
    page = f.read()
  assert page.count('<tr class="regression">') == 1 and page.count(">REGRESSION<") == 1
  assert "1 slice(s) regressed" in page
  _check_page_renders(html_path, tmp_path, len(saved["plots"]))


def _marker_rows(image, colour):
  """Mean row of `colour`'s pixels in each run of adjacent columns holding it, left to right."""
  mask = (np.abs(image - np.array(colour)).sum(axis=2) < 40)
  columns = np.flatnonzero(mask.any(axis=0))
  runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
  return [float(np.nonzero(mask[:, run])[0].mean()) for run in runs if len(run)]


def test_metric_by_slice_chart_zooms_to_the_data_and_draws_the_gate():
  """0.981 and 1.000 must look different, and the gate must show."""
  rows = [{"value": value, "examples": 500.0, "small": False, "candidate": metric,
           "baseline": None, "candidate_ci95": None, "baseline_ci95": None}
          for value, metric in (("a", 0.981), ("b", 1.0))]
  uri = plots.metric_by_slice("feature", rows, "accuracy", 30,
                              {"bound": ">= 0.975", "limit": 0.975})
  image = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
                     .convert("RGB")).astype(int)
  low, high = _marker_rows(image, (0x1f, 0x77, 0xb4))[:2]  # slice a, slice b
  assert low - high > 0.4 * image.shape[0]  # on a 0-1 axis they would be a few pixels apart
  gate = (np.abs(image - np.array((0xd6, 0x27, 0x28))).sum(axis=2) < 40)
  assert gate.any(axis=1).sum() >= 1 and gate.sum() > 100
  gate_row = float(np.nonzero(gate[:, :image.shape[1] // 2])[0].mean())
  assert gate_row > low  # the gate (0.975) is drawn below both points


def test_the_names_readers_look_for_are_those_tfx_records():
  assert names.MODEL_EVALUATION_TYPE_NAME == standard_artifacts.ModelEvaluation.TYPE_NAME
  assert EvaluationReport.TYPE_NAME == names.REPORT_TYPE_NAME
