"""The replay of a family's spans (bench/replay.py): a short real one of the
CNN (two of twenty parts of the shipped digits, 30 steps), and its page and
summary on given records."""
import json
import os

import pytest

from bench import replay
from pipeline import configs
from runners.layout import OutputLayout


@pytest.mark.e2e
def test_replay_runs_span_after_span_warm_from_the_served_model(tmp_path):
  output_dir = str(tmp_path / "outputs")
  assert replay.main(["--model", "cnn", "--output-dir", output_dir, "--parts", "20",
                      "--spans", "2", "--train-steps", "30", "--min-metric", "0"]) == 0
  reports = os.path.join(OutputLayout(output_dir).reports_dir("cnn"), "replay")
  with open(os.path.join(reports, replay.REPLAY_JSON), encoding="utf-8") as f:
    recorded = json.load(f)
  first, second = recorded["runs"]
  assert (first["span"], first["window"], second["window"]) == (1, "span 1", "spans 1-2")
  # Span 1: nothing served yet, so blessed on the floor of 0 and pushed, cold.
  assert first["blessed"] and first["pushed"] and first["warm_from"] is None
  assert first["served"] is None and 0 <= first["candidate"] <= 1
  assert first["drift"]["against"] == "the reference statistics"
  # Span 2: warm from span 1's version, checked against and judged against it.
  assert second["warm_from"] == first["pushed"]
  assert second["drift"]["against"] == (
      f"the training data of served version {first['pushed']} (span 1)")
  assert second["served"] is not None and second["served_ci95"]
  assert second["trainer_seconds"] > 0 and second["run_seconds"] > second["trainer_seconds"]
  assert recorded["summary"]["spans"] == 2 and recorded["metric"] == (
      configs.CNN.headline_metric)
  with open(os.path.join(reports, replay.REPLAY_HTML), encoding="utf-8") as f:
    html = f.read()
  assert f"warm from {first['pushed']}" in html


def _record(span, candidate, trainer_seconds, warm_from=None, **extra):
  return dict(span=span, window=f"span {span}", candidate=candidate, candidate_ci95=[0.1, 0.3],
              served=None, served_ci95=None, blessed=True, pushed=str(1000 + span),
              trainer_seconds=trainer_seconds, run_seconds=2 * trainer_seconds,
              warm_from=warm_from, **extra)


def test_summary_compares_warm_and_cold_after_the_first_span():
  warm = [_record(1, 0.20, 100.0), _record(2, 0.22, 30.0, "1001"),
          _record(3, 0.18, 50.0, "1002", stopped="drift")]
  cold = [_record(1, 0.20, 100.0), _record(2, 0.21, 100.0), _record(3, 0.21, 80.0)]
  summary = replay.summarize(warm, cold)
  assert summary["warm_trainer_seconds"] == pytest.approx(40.0)
  assert summary["cold_trainer_seconds"] == pytest.approx(90.0)
  assert summary["warm_over_cold_trainer_time"] == pytest.approx(40.0 / 90.0)
  assert summary["warm_minus_cold_metric"] == pytest.approx(0.20 - 0.21)
  assert (summary["spans"], summary["blessed"], summary["stopped"]) == (3, 3, 1)
  page = replay.render({"family": "two_tower", "data": "ml-100k", "metric": "recall_at_10",
                        "runs": warm, "cold": cold, "summary": summary})
  assert "stopped: drift" in page and "warm from 1001" in page
  assert "warm / cold Trainer time 0.44" in page
