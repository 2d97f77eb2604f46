"""What every pushed version records of where it came from, and reading it
where nothing heavy may be imported.

AtomicPusher writes `PUSH_RECORD` last into each version it publishes
(components/atomic_pusher.py, components/publishing.py): which model and
blessing, and, for a model trained on spans, the newest span and the window
(`SPAN_KEY`, `WINDOW_SPANS_KEY`), with the statistics of the examples it
was trained on beside it (`TRAINING_STATISTICS`: what later spans are
checked for drift against). The runners' checks read it before a run
starts, so this module imports neither TFX nor TensorFlow and reads local
serving directories only.
"""
import json
import os
from typing import Any, Dict, Iterable, Iterator, NamedTuple, Optional, Tuple

from components.input_errors import InputDataError

PUSH_RECORD = "assets.extra/push_record.json"
SPAN_KEY = "span"
WINDOW_SPANS_KEY = "window_spans"
# TFDV statistics (a binary DatasetFeatureStatisticsList) of the train split
# a version trained on spans learnt from, inside the version.
TRAINING_STATISTICS = "assets.extra/training_statistics.pb"


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


def newest_trained(records: Iterable[Tuple[int, Dict[str, Any]]]) -> Optional[TrainedSpan]:
  """The newest span among (version, push record) pairs, and the newest
  version trained on it; None if no record names a span."""
  return max((TrainedSpan(record[SPAN_KEY], version) for version, record in records
              if record.get(SPAN_KEY) is not None), default=None)


def newest_trained_span(serving_dir: str) -> Optional[TrainedSpan]:
  """newest_trained of the complete versions under a local `serving_dir`
  (components/atomic_pusher.published_records reads any filesystem)."""
  return newest_trained(_local_records(serving_dir))


def _local_records(serving_dir: str) -> Iterator[Tuple[int, Dict[str, Any]]]:
  if not os.path.isdir(serving_dir):
    return
  for name in os.listdir(serving_dir):
    path = os.path.join(serving_dir, name, *PUSH_RECORD.split("/"))
    if name.isdigit() and os.path.isfile(path):
      with open(path, encoding="utf-8") as f:
        yield int(name), json.load(f)
