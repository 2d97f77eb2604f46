"""Checks a runner makes before any component runs, in a second, writing nothing.

TFX fails late and obscurely on input it cannot read (ExampleGen on a missing
split or an empty or non-GZIP file) and on an output directory it cannot
write; these checks name the file or directory at fault instead. The input
check is the family's example source's own (components/example_sources.py),
so this module imports neither TFX nor TensorFlow.
"""
import argparse
import math
import os
import sys
import tempfile
from typing import List, Optional

from components import push_records, spans
from components.example_sources import InputDataError
from components.input_errors import BAD_INPUT_PREFIX
from components.spans import SpanRequest
from modules.common import contract
from pipeline import configs
from pipeline.configs import FamilyConfig
from runners.layout import OutputLayout

__all__ = ["InputDataError", "EXIT_BAD_ARGUMENTS", "EXIT_DATA_ANOMALIES", "EXIT_NOT_BLESSED",
           "EXIT_OUTPUT_LOCKED", "add_run_arguments", "can_create_directory", "check_input",
           "check_not_behind_served", "check_run_arguments", "describe_input"]

# Exit status of bad arguments (argparse's own).
EXIT_BAD_ARGUMENTS = 2
# Exit status of a run stopped by its data (here, or at the AnomaliesGate).
EXIT_DATA_ANOMALIES = 3
# Exit status of a run that completed with a model the gate did not bless,
# when --require-blessing asks for one (CI).
EXIT_NOT_BLESSED = 4
# Exit status of a run that found another run holding its output directory
# (runners/run_lock.py).
EXIT_OUTPUT_LOCKED = 5


def can_create_directory(path: str) -> bool:
  """Whether `path` is, or can be made, a writable directory.

  Permission bits are not enough (root passes them on /proc and /sys): a
  throw-away directory is made in the nearest existing ancestor and removed,
  so nothing stays behind either way.
  """
  while not os.path.exists(path):
    path = os.path.dirname(path)
  if not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
    return False
  try:
    os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=path))
  except OSError:
    return False
  return True


def describe_input(data_dir: str, window: Optional[spans.SpanWindow]) -> str:
  """What a run reads, for its first line: the directory, and the spans."""
  if window is None:
    return data_dir
  return f"{window.describe()} of {data_dir} (eval from span {window.newest})"


def check_not_behind_served(data_dir: str, window: Optional[spans.SpanWindow],
                            serving_dir: str) -> None:
  """push_records.check_not_behind, against what is served now."""
  if window is not None:
    push_records.check_not_behind(data_dir, window.newest, serving_dir,
                                  push_records.newest_trained_span(serving_dir))


def check_input(family: FamilyConfig, data_dir: str,
                span_request: Optional[SpanRequest] = None) -> List[str]:
  """Raises InputDataError naming the file (or span) at fault; returns the
  files the run would read."""
  return family.example_source.check(data_dir, span_request)


def add_run_arguments(parser: argparse.ArgumentParser, default_output_dir: str) -> None:
  """The arguments every runner that runs a family's pipeline here takes."""
  parser.add_argument("--model", required=True, choices=sorted(configs.FAMILIES),
                      help="model family to run")
  parser.add_argument("--output-dir", default=default_output_dir)
  parser.add_argument("--data-dir", help="folder with train/ and eval/ data, or MovieLens "
                      "u.data + u.item (default: the family's shipped data under data/)")
  parser.add_argument("--train-steps", type=int, help="override training steps")
  parser.add_argument("--min-metric", type=float,
                      help="override the minimum value of the gated metric")
  parser.add_argument("--require-blessing", action="store_true",
                      help=f"exit {EXIT_NOT_BLESSED} when the run completes with a model the "
                      "gate did not bless (for CI)")
  parser.add_argument("--no-cache", action="store_true", help="re-run every component")
  parser.add_argument("--span", type=int,
                      help="where the data comes in span-<N>/ folders: the span to run on "
                      "(re-run or back-fill it; default: the newest)")
  parser.add_argument("--window", type=int,
                      help="where the data comes in spans: train on this many spans ending "
                      "at the run's span (default: the family's window, as many as exist)")
  parser.add_argument("--cold-start", action="store_true",
                      help="on a new span, train from scratch instead of from the model "
                      "served from an older span")
  parser.add_argument("--accept-drift", action="store_true",
                      help="train on data that drifted beyond the schema's thresholds "
                      "(the shift is real); the run summary and report say so")
  add_compression_argument(parser)


def add_compression_argument(parser: argparse.ArgumentParser) -> None:
  """--compression, for every runner (checked by `check_compression`)."""
  parser.add_argument("--compression", choices=contract.COMPRESSIONS,
                      help="compress the exported models: magnitude pruning or "
                      "quantization-aware training (default: the family's, none)")


def check_compression(parser: argparse.ArgumentParser, family: FamilyConfig,
                      compression: Optional[str]) -> None:
  """Exits 2 with one line where the family cannot take `compression`."""
  if compression:
    try:
      family.checked_compression(compression)
    except ValueError as error:
      parser.error(str(error))


def check_run_arguments(parser: argparse.ArgumentParser,
                        args: argparse.Namespace) -> FamilyConfig:
  """Checks what `add_run_arguments` parsed, before anything is written.

  Bad arguments exit 2 (through `parser.error`); input data the family's
  ExampleGen cannot read (a missing or partial span, a window reaching past
  the spans present) exits EXIT_DATA_ANOMALIES naming the file or span.
  Makes `args.data_dir` and `args.output_dir` absolute, sets
  `args.span_request` and `args.span_window` (None: data without spans);
  returns the family.
  """
  family = configs.get_family(args.model)
  if not args.data_dir:
    args.data_dir = os.path.join(configs.DEFAULT_DATA_ROOT, family.data_subdir)
    if not os.path.isdir(args.data_dir) and family.data_build_command:
      parser.error(f"{family.name}'s data {args.data_dir} is missing: "
                   f"`{family.data_build_command}` builds it")
  args.data_dir = os.path.abspath(args.data_dir)
  if not os.path.isdir(args.data_dir):
    parser.error(f"--data-dir {args.data_dir} is not a readable directory")
  args.output_dir = os.path.abspath(args.output_dir)
  if not can_create_directory(args.output_dir):
    parser.error(f"--output-dir {args.output_dir} cannot be created or written "
                 "(a file is in the way, or no write permission)")
  if args.train_steps is not None and args.train_steps < 1:
    parser.error("--train-steps must be at least 1")
  if args.span is not None and args.span < 1:
    parser.error("--span must be a span number (1 or more)")
  if args.window is not None and args.window < 1:
    parser.error("--window must be at least 1")
  check_compression(parser, family, args.compression)
  args.span_request = SpanRequest(span=args.span or 0,
                                  window=args.window or family.span_window,
                                  full_window=args.window is not None)
  if args.min_metric is not None:
    low, high = family.gate.value_range
    if not (math.isfinite(args.min_metric) and low <= args.min_metric <= high):
      parser.error(f"--min-metric {args.min_metric:g} is outside the range of "
                   f"{family.name}'s gated metric {family.gate.metric} "
                   f"[{low:g}, {high:g}]")
  try:
    check_input(family, args.data_dir, args.span_request)
    args.span_window = spans.resolve(args.data_dir, args.span_request)
    if args.span is None:
      check_not_behind_served(args.data_dir, args.span_window,
                              OutputLayout(args.output_dir).serving_dir(family.name))
  except InputDataError as error:
    print(f"{BAD_INPUT_PREFIX} {error}", file=sys.stderr)
    sys.exit(EXIT_DATA_ANOMALIES)
  return family
