"""The atomic push: staged, verified by warmup replay, then a fresh version."""
import os
import threading

import numpy as np
import pytest
import tensorflow as tf

from components import atomic_pusher, publishing, push_records
from modules.common import warmup


def _saved_model(path: str, broken: bool = False) -> str:
  """A real SavedModel with TF Serving warmup requests; `broken` yields NaN."""

  class Scaler(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
      return {"y": x * 0.0 / 0.0 if broken else x * 2.0}

  module = Scaler()
  tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
  warmup.write_warmup_requests(path, {"serving_default": {"x": np.array([1.0], np.float32)}})
  return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  return _saved_model(str(tmp_path_factory.mktemp("model")))


def _visible(base_dir):
  return sorted(os.listdir(base_dir))


def test_push_publishes_a_complete_loadable_version(model_dir, tmp_path):
  version, path = atomic_pusher.push_atomically(model_dir, str(tmp_path), clock=lambda: 1700000000.5)
  assert version == "1700000000" and path == str(tmp_path / "1700000000")
  assert _visible(tmp_path) == ["1700000000"]  # no staging or claim files left
  assert warmup.replay(path) == 1
  served = tf.saved_model.load(path).signatures["serving_default"](x=tf.constant([3.0]))
  np.testing.assert_allclose(served["y"].numpy(), [6.0])


def test_two_pushes_in_the_same_second_get_distinct_versions(model_dir, tmp_path):
  same_second = lambda: 1700000000.0  # noqa: E731
  first, _ = atomic_pusher.push_atomically(model_dir, str(tmp_path), clock=same_second)
  second, _ = atomic_pusher.push_atomically(model_dir, str(tmp_path), clock=same_second)
  assert (first, second) == ("1700000000", "1700000001")
  # A clock that went backwards still moves forward from the newest version.
  third, _ = atomic_pusher.push_atomically(model_dir, str(tmp_path), clock=lambda: 5.0)
  assert third == "1700000002"


def test_concurrent_pushes_never_share_or_overwrite_a_version(model_dir, tmp_path):
  results, errors = [], []

  def push():
    try:
      results.append(atomic_pusher.push_atomically(
          model_dir, str(tmp_path), verify=lambda _: None, clock=lambda: 1700000000.0)[0])
    except Exception as error:  # pylint: disable=broad-except
      errors.append(error)

  threads = [threading.Thread(target=push) for _ in range(4)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  assert not errors
  assert sorted(results) == [str(1700000000 + i) for i in range(4)]
  assert _visible(tmp_path) == sorted(results)


def test_model_failing_its_warmup_replay_is_not_published(tmp_path):
  broken = _saved_model(str(tmp_path / "broken"), broken=True)
  base = tmp_path / "serving"
  with pytest.raises(ValueError, match="not finite"):
    atomic_pusher.push_atomically(broken, str(base))
  assert _visible(base) == []


def test_interrupted_push_is_invisible_and_cleaned_up_later(model_dir, tmp_path):
  stale = tmp_path / f"{publishing.STAGING_PREFIX}killed"
  stale.mkdir()
  (stale / "variables").mkdir()  # What a push killed mid-copy leaves behind.
  os.utime(stale, (0, 0))
  assert publishing.numeric_versions(str(tmp_path)) == []
  atomic_pusher.push_atomically(model_dir, str(tmp_path), clock=lambda: 1700000000.0)
  assert _visible(tmp_path) == ["1700000000"]


def test_push_record_marks_the_version_and_names_its_source(model_dir, tmp_path):
  record = {"model_uri": "/runs/1/Trainer/model", "model_id": 7}
  version, _ = atomic_pusher.push_atomically(model_dir, str(tmp_path), record=record,
                                             clock=lambda: 1700000000.0)
  assert push_records.served_record(str(tmp_path)) == (int(version), record)
  # A numeric directory without a record (a copy killed part-way) is no version.
  (tmp_path / "1800000000" / "variables").mkdir(parents=True)
  assert push_records.served_record(str(tmp_path)) == (int(version), record)
  assert publishing.numeric_versions(str(tmp_path)) == [1700000000, 1800000000]


def test_push_to_an_object_store_copies_saved_model_pb_then_the_record_last(
    model_dir, monkeypatch):
  """TF's in-memory filesystem (ram://) stands in for gs:// and s3://: a
  scheme:// path whose directories are not renamed atomically."""
  copied = []
  real_copy = tf.io.gfile.copy

  def recording_copy(source, target, overwrite=False):
    copied.append(target)
    real_copy(source, target, overwrite)

  monkeypatch.setattr(tf.io.gfile, "copy", recording_copy)
  base = "ram://bucket/serving/cnn"
  version, path = atomic_pusher.push_atomically(model_dir, base, record={"model_uri": "m"},
                                                clock=lambda: 1700000000.0)
  assert path == f"{base}/{version}"
  assert copied[-2:] == [f"{path}/saved_model.pb", f"{path}/{atomic_pusher.PUSH_RECORD}"]
  assert push_records.served_record(base) == (1700000000, {"model_uri": "m"})
  served = tf.saved_model.load(path).signatures["serving_default"](x=tf.constant([3.0]))
  np.testing.assert_allclose(served["y"].numpy(), [6.0])
  second, _ = atomic_pusher.push_atomically(model_dir, base, clock=lambda: 1700000000.0)
  assert second == "1700000001"


def test_the_version_before_a_span_is_the_newest_trained_on_an_older_span(model_dir, tmp_path):
  """A re-run of a span must start from, and check its data against, what
  the first run of that span did: never a model trained on that span or a
  later one."""
  base = str(tmp_path)
  for clock, span in ((1700000001.0, 1), (1700000002.0, 2), (1700000003.0, None),
                      (1700000004.0, 3)):
    record = {"model_uri": f"m{clock}"}
    if span is not None:
      record.update({atomic_pusher.SPAN_KEY: span, atomic_pusher.WINDOW_SPANS_KEY: [span]})
    atomic_pusher.push_atomically(model_dir, base, record=record, clock=lambda c=clock: c,
                                  training_statistics=f"statistics {clock}".encode())
  assert push_records.version_before_span(base, 1) == (None, None)
  assert push_records.version_before_span(base, 2)[0] == 1700000001
  # Not the record without a span.
  assert push_records.version_before_span(base, 3)[0] == 1700000002
  assert push_records.version_before_span(base, 9)[1]["model_uri"] == "m1700000004.0"
  with open(atomic_pusher.training_statistics_path(base, 1700000002), "rb") as f:
    assert f.read() == b"statistics 1700000002.0"
