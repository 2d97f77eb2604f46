"""What every pushed version records of where it came from, and reading it
where nothing heavy may be imported.

AtomicPusher writes `PUSH_RECORD` last into each version it publishes
(components/atomic_pusher.py, components/publishing.py): which model and
blessing, and, for a model trained on spans, the newest span and the window
(`SPAN_KEY`, `WINDOW_SPANS_KEY`), with the statistics of the examples it
was trained on beside it (`TRAINING_STATISTICS`: what later spans are
checked for drift against). The runners' checks read it before a run
starts, and `runners.review` whenever it names a served version, so this
module imports neither TFX nor TensorFlow (components/storage.py loads
TensorFlow only to read an object store).
"""
import json
from typing import Any, Dict, Iterator, NamedTuple, Optional, Tuple

from components import publishing
from components.input_errors import InputDataError

PUSH_RECORD = "assets.extra/push_record.json"
SPAN_KEY = "span"
WINDOW_SPANS_KEY = "window_spans"
# TFDV statistics (a binary DatasetFeatureStatisticsList) of the train split
# a version trained on spans learnt from, inside the version.
TRAINING_STATISTICS = "assets.extra/training_statistics.pb"
# Custom property of a PushedModel that was not pushed: why not.
NOT_PUSHED_REASON = "not_pushed_reason"


class TrainedSpan(NamedTuple):
  span: int
  version: int


def check_not_behind(data_dir: str, newest: int, serving_dir: str,
                     trained: Optional[TrainedSpan]) -> None:
  """Refuses a run, unasked, on a newest span older than one a served
  version was trained on (a span folder removed, or the wrong data
  directory): `--span` re-runs or back-fills an older span on purpose."""
  if trained is not None and newest < trained.span:
    raise InputDataError(
        f"{data_dir}: its newest span is {newest}, older than span {trained.span}, "
        f"which version {trained.version} under {serving_dir} was trained on; pass "
        f"--span {newest} to re-run or back-fill it")


def newest_trained_span(serving_dir: str) -> Optional[TrainedSpan]:
  """The newest span a complete version under `serving_dir` was trained on,
  and the newest version trained on it; None if no record names a span."""
  return max((TrainedSpan(record[SPAN_KEY], version)
              for version, record in published_records(serving_dir)
              if record.get(SPAN_KEY) is not None), default=None)


def published_records(base_dir: str) -> Iterator[Tuple[int, Dict[str, Any]]]:
  """(version, push record) of each complete version under `base_dir`,
  newest first, each record read only when it is asked for."""
  for version in reversed(publishing.published_versions(base_dir, PUSH_RECORD)):
    yield version, json.loads(publishing.read_marker(base_dir, version, PUSH_RECORD))


def served_record(base_dir: str) -> Tuple[Optional[int], Optional[Dict[str, Any]]]:
  """(version, record) of the newest complete version under `base_dir`, or (None, None)."""
  return next(published_records(base_dir), (None, None))


def version_before_span(base_dir: str, span: int
                        ) -> Tuple[Optional[int], Optional[Dict[str, Any]]]:
  """(version, record) of the newest complete version under `base_dir`
  trained on a span older than `span`, or (None, None): the model a run on
  `span` starts from and checks its data against, the same for every re-run
  of that span."""
  return next(((version, record) for version, record in published_records(base_dir)
               if record.get(SPAN_KEY) is not None and record[SPAN_KEY] < span), (None, None))
