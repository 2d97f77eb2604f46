"""The replay of a family's spans (bench/replay.py): what it reads back of a
real run on a new span (the CNN history's span-2 run, tests/cnn_history.py),
how it cuts shipped data into spans, and its summary and page."""
import collections
import glob
import os
import re

import pytest
import tensorflow as tf

from bench import replay
from pipeline import configs
from tests import e2e_helpers


@pytest.mark.e2e
def test_replay_reads_what_a_run_on_a_new_span_did(cnn_history):
  """Warm from the version served from span 1, drift-checked against what
  it learnt, judged against it on span 2's eval, with both intervals."""
  result = cnn_history.next_span
  (run_id,) = re.findall(r"\(run (\S+), logs:", result.stdout)
  recorded = replay.read_run(configs.CNN, cnn_history.next_span_output_dir, run_id)
  (served,) = e2e_helpers.pushed_versions(
      e2e_helpers.serving_dir(cnn_history.output_dir, "cnn"))[-1:]
  assert recorded["warm_from"] == served
  assert recorded["drift"] == {
      "against": f"the training data of served version {served} (span 1)",
      "findings": [], "accepted": False}
  assert recorded["trainer_state"] == "executed" and recorded["trainer_seconds"] > 0
  assert 0 <= recorded["candidate"] <= 1 and 0 <= recorded["served"] <= 1
  assert recorded["candidate_ci95"] and recorded["served_ci95"]
  assert recorded["blessed"] == ("Blessed: yes" in result.stdout)


def test_shipped_tfrecords_become_consecutive_disjoint_spans(tmp_path):
  counts = replay.cut_into_spans(configs.CNN, str(tmp_path), 7, 175, parts=25)
  assert sorted(counts) == list(range(1, 26)) and counts[1] == (4000 + 1000) // 25
  seen = collections.Counter()
  for split in ("train", "eval"):
    files = glob.glob(str(tmp_path / "span-*" / split / "*.gz"))
    seen.update(r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))
  assert len(seen) == 5000 and set(seen.values()) == {1}
  assert os.path.isdir(tmp_path / "span-25" / "eval")


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
