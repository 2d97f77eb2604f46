"""Which spans a Kubeflow run reads, resolved by a task of its own before its
ExampleGen.

    python -m components.span_resolution --input-base DATA --input-config JSON
        --serving-dir DIR --span N --window K --default-window W
        --span-output FILE --window-output FILE --full-window-output FILE
        --fingerprint-output FILE

Kubeflow Pipelines keys a task's cache on its parameter values and the
identities of its input artifacts. An ExampleGen asked for "the newest span"
carries the same parameters every day, so the cache would hand back the
examples of the span before. Locally, SpanWindowDriver resolves the window
before the cache is looked up (components/span_example_gen.py); KFP runs no
TFX drivers, and Vertex's pre-cache check fingerprints `{SPAN}` patterns this
layout does not use. This task runs uncached, resolves the window from the
directory listing and writes the resolved span, window and the fingerprint
of the window's files as KFP output parameters, which the ExampleGen takes as
its own: a new span, or changed files, is a cache miss, and the same span
again a cache hit, as SpanWindowDriver makes it on the local runner.

Like the local runners' check, it refuses a newest span older than the one a
served version was trained on unless the run names its span (`--span`, the
pipeline's `span` parameter); the message names both spans and the version.
"""
import argparse
import sys
from typing import List, Optional

from components import push_records, spans
from components.input_errors import BAD_INPUT_PREFIX, InputDataError
from components.span_example_gen import input_fingerprint, listdir

# The exit status of a refusal, as the runners' own checks exit.
EXIT_BAD_INPUT = 3


def resolve(input_base: str, serving_dir: str, span: int, window: int,
            default_window: int) -> Optional[spans.SpanWindow]:
  """The window a run on `span` (0: the newest) of `window` spans (0: the
  family's `default_window`, as many as exist) reads; None for data
  without spans. Raises InputDataError as the local runners' checks do."""
  request = spans.SpanRequest(span=span, window=window or default_window,
                              full_window=window > 0)
  resolved = spans.resolve(input_base, request, listdir)
  if resolved is not None and not span:
    push_records.check_not_behind(input_base, resolved.newest, serving_dir,
                                  push_records.newest_trained_span(serving_dir))
  return resolved


def _write(path: str, value) -> None:
  with open(path, "w", encoding="utf-8") as f:
    f.write(str(value))


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--input-base", required=True)
  parser.add_argument("--input-config", required=True, help="the ExampleGen's, as JSON")
  parser.add_argument("--serving-dir", required=True)
  parser.add_argument("--span", type=int, required=True, help="0: the newest")
  parser.add_argument("--window", type=int, required=True, help="0: the family's default")
  parser.add_argument("--default-window", type=int, required=True)
  for output in ("span", "window", "full-window", "fingerprint"):
    parser.add_argument(f"--{output}-output", required=True)
  args = parser.parse_args(argv)
  try:
    window = resolve(args.input_base, args.serving_dir, args.span, args.window,
                     args.default_window)
  except InputDataError as error:
    print(f"{BAD_INPUT_PREFIX} {error}", file=sys.stderr)
    return EXIT_BAD_INPUT
  _write(args.span_output, window.newest if window else 0)
  _write(args.window_output, len(window.spans) if window else 1)
  _write(args.full_window_output, 1 if window else 0)
  _write(args.fingerprint_output, input_fingerprint(args.input_base, args.input_config, window))
  print(f"Resolved {window.describe() if window else 'data without spans'} of "
        f"{args.input_base}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
