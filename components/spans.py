"""Spans: a family's data arriving in numbered parts, and the window of them a
run trains on.

`DATA/span-<N>/` holds span N in the family's own layout (`train/` and
`eval/` TFRecords; the MovieLens files of that span's new interactions). A run
takes the newest span present, or the one it names, and trains on a window of
the K spans that end at it: spans N-K+1 .. N, every one of them present. Its
eval examples come from span N alone and are never trained on (how each
example source draws that line: components/example_sources.py). A data
directory without `span-*` entries is one dataset, read as before.

The window is resolved from the directory listing wherever a run reads the
data: by the ExampleGen's driver where the orchestrator runs drivers (its
fingerprint covers exactly the window's files, so a new span re-runs the
pipeline and the same span is a cache hit), by its executor everywhere (the
Kubeflow target runs no drivers), and by the runners' checks before anything
runs. All three call `resolve`; this module imports neither TFX nor
TensorFlow, so the checks stay fast.
"""
import dataclasses
import os
import re
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

from components.input_errors import InputDataError

SPAN_PREFIX = "span-"
_SPAN_NAME = re.compile(r"span-(0|[1-9][0-9]*)")
# The ExampleGen's execution parameters that carry a SpanRequest.
SPAN_PARAMETER = "requested_span"
WINDOW_PARAMETER = "window"
FULL_WINDOW_PARAMETER = "full_window"
# The execution property holding the fingerprint of the files read (TFX's
# example_gen utils.FINGERPRINT_PROPERTY_NAME, which TFX records on the
# Examples): set by the ExampleGen's driver, or on Kubeflow by the task
# resolving the spans (components/span_resolution.py).
FINGERPRINT_PARAMETER = "input_fingerprint"


@dataclasses.dataclass(frozen=True)
class SpanRequest:
  """What a run asks for: `span` (0: the newest present) and a window of
  `window` spans ending at it. With `full_window`, a window reaching below
  the first span present is refused (a window the user asked for); without
  it, it starts at the first span present (a family's default window, on data
  that has fewer spans so far)."""
  span: int = 0
  window: int = 1
  full_window: bool = False

  def __post_init__(self):
    if self.span < 0:
      raise ValueError(f"span must be 0 (the newest) or a span number, got {self.span}")
    if self.window < 1:
      raise ValueError(f"a window holds at least 1 span, got {self.window}")

  def as_parameters(self) -> dict:
    """The ExampleGen's execution parameters for this request."""
    return {SPAN_PARAMETER: self.span, WINDOW_PARAMETER: self.window,
            FULL_WINDOW_PARAMETER: int(self.full_window)}

  @classmethod
  def from_parameters(cls, exec_properties: dict) -> "SpanRequest":
    """The request an ExampleGen's execution parameters carry (absent: the
    newest span alone)."""
    def value(key, default):
      found = exec_properties.get(key)
      return default if found is None else int(found)
    return cls(value(SPAN_PARAMETER, 0), value(WINDOW_PARAMETER, 1),
               bool(value(FULL_WINDOW_PARAMETER, 0)))


@dataclasses.dataclass(frozen=True)
class SpanWindow:
  """The spans one run reads, oldest first; the last is the eval span."""
  data_dir: str
  spans: Tuple[int, ...]

  @property
  def newest(self) -> int:
    return self.spans[-1]

  def directory(self, span: int) -> str:
    return span_directory(self.data_dir, span)

  def describe(self) -> str:
    first, last = self.spans[0], self.spans[-1]
    return f"span {last}" if first == last else f"spans {first}-{last}"


def span_directory(data_dir: str, span: int) -> str:
  """`data_dir`'s folder of `span` (a local path or a URI)."""
  return f"{data_dir.rstrip('/')}/{SPAN_PREFIX}{span}"


def _ranges(spans: Sequence[int]) -> str:
  """1, 2, 3, 5 -> '1-3, 5'."""
  parts, start = [], None
  for index, span in enumerate(spans):
    if start is None:
      start = span
    if index + 1 == len(spans) or spans[index + 1] != span + 1:
      parts.append(str(span) if start == span else f"{start}-{span}")
      start = None
  return ", ".join(parts)


def spans_present(data_dir: str, names: Iterable[str]) -> List[int]:
  """The span numbers among a directory's entry names, ascending; [] when
  none is a span. A `span-` entry that is not `span-<number>` is refused,
  as is a directory holding spans beside another dataset's folders."""
  spans, others = [], []
  for name in (name.rstrip("/") for name in names):
    if name.startswith(SPAN_PREFIX):
      if not _SPAN_NAME.fullmatch(name):
        raise InputDataError(
            f"{span_directory(data_dir, name[len(SPAN_PREFIX):])}: a span folder is named "
            f"span-<number> (e.g. span-3); rename it, or move it out of {data_dir}")
      spans.append(int(name[len(SPAN_PREFIX):]))
    elif not name.startswith("."):
      others.append(name)
  if spans and others:
    raise InputDataError(
        f"{data_dir}: holds span folders and {', '.join(sorted(others))} beside them; "
        "a data directory is either one dataset or span-<N>/ folders: move the rest "
        "into a span")
  return sorted(spans)


def select(data_dir: str, present: Sequence[int], request: SpanRequest) -> SpanWindow:
  """The window `request` asks for among the spans `present` (ascending)."""
  if not present:
    raise InputDataError(f"{data_dir}: no span-<N> folders")
  newest = request.span or present[-1]
  if newest not in present:
    raise InputDataError(f"{data_dir}: there is no span {newest} (spans present: "
                         f"{_ranges(present)}); name one of those with --span")
  first = newest - request.window + 1
  if first < present[0] and not request.full_window:
    first = present[0]
  wanted = range(first, newest + 1)
  missing = [span for span in wanted if span not in present]
  if missing:
    most = next(size for size in range(len(wanted), 0, -1)
                if all(span in present for span in range(newest - size + 1, newest + 1)))
    raise InputDataError(
        f"{data_dir}: a window of {len(wanted)} span(s) ending at span {newest} needs spans "
        f"{wanted[0]}-{newest}, but span(s) {_ranges(missing)} are missing (spans present: "
        f"{_ranges(present)}); pass --window {most} or less, or add the missing spans")
  return SpanWindow(data_dir.rstrip("/"), tuple(wanted))


def resolve(data_dir: str, request: Optional[SpanRequest],
            listdir: Callable[[str], Iterable[str]] = os.listdir) -> Optional[SpanWindow]:
  """The window of spans a run reads from `data_dir`; None where the
  directory holds no spans (one dataset, read whole). `listdir` lists a
  directory on the filesystem it is on (os.listdir, tf.io.gfile.listdir)."""
  request = request or SpanRequest()
  present = spans_present(data_dir.rstrip("/"), listdir(data_dir))
  if not present:
    if request.span or request.full_window:
      raise InputDataError(f"{data_dir}: holds no span-<N> folders, so --span and --window "
                           "do not apply; drop them, or lay the data out in spans")
    return None
  return select(data_dir, present, request)
