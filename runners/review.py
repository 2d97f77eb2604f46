"""Review a model family's evaluations from the terminal.

    python -m runners.review --model cnn [--output-dir ./outputs]
        [--list [N] | --evaluation ID | --served | --history | --compare A B]

Reads the local runner's MLMD (`<output-dir>/metadata.sqlite`) and serving
directory (`<output-dir>/serving/<family>/`).
  (default)        the latest evaluation;
  --evaluation ID  that evaluation (ids as --list prints them);
  --served         the evaluation of the model served now (the newest
                   complete version);
each printing where its report is and a summary (overall metrics of
candidate and baseline with TFMA's 95% intervals, each threshold passed,
failed or not applied, the blessing) and whether the model shown is the one
served. Everything is read from the report.json each run records, so no
option loads TensorFlow or TFMA, with one exception: when no report was
recorded for an evaluation (runs from before EvalReport existed, or its
files are gone), it is regenerated once from the Evaluator output into
`<output-dir>/reports/<family>/evaluation-<id>/` and read from there after.
  --list [N]       the N (default 10) newest evaluations, one line each;
  --history        every evaluation of the family, oldest first, as
                   `reports/<family>/history/history.html` (trend plot and
                   table, opens offline) and `history.json`;
  --compare A B    two evaluations (evaluation ids or pushed versions) side
                   by side, as `reports/<family>/compare-A-B/compare.html`
                   and `compare.json`.
Exit status: 0 shown, 1 nothing to show (no runs, no such evaluation or
version, nothing served, or neither a report nor the Evaluator output of an
evaluation shown is left), 2 bad arguments. --list and --history show such
an evaluation without its metric.
"""
import argparse
import logging
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# After the Keras switch above (TFMA loads Keras to regenerate a missing report).
# None of these imports TensorFlow, TFMA or matplotlib (tests/test_eval_report.py runs
# every option as a process and checks).
from components.eval_report import (  # noqa: E402
    compare, history, locate, names, report_files, terminal, versions)
from components.quiet_startup import quiet_startup  # noqa: E402
from pipeline import configs  # noqa: E402
from runners.layout import OutputLayout  # noqa: E402

DEFAULT_LIST_LENGTH = 10
NOTHING_TO_SHOW = 1


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m runners.review",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, choices=sorted(configs.FAMILIES),
                      help="model family")
  parser.add_argument("--output-dir", default="outputs",
                      help="the local runner's output directory (holds metadata.sqlite)")
  what = parser.add_mutually_exclusive_group()
  what.add_argument("--list", nargs="?", type=int, const=DEFAULT_LIST_LENGTH, metavar="N",
                    help=f"list the N newest evaluations (default {DEFAULT_LIST_LENGTH})")
  what.add_argument("--evaluation", type=int, metavar="ID", help="show this evaluation")
  what.add_argument("--served", action="store_true",
                    help="show the evaluation of the model served now")
  what.add_argument("--history", action="store_true",
                    help="write history.html and history.json of every evaluation")
  what.add_argument("--compare", nargs=2, metavar=("A", "B"),
                    help="two evaluation ids or pushed versions, side by side")
  args = parser.parse_args(argv)
  if args.list is not None and args.list < 1:
    parser.error("--list: N must be at least 1")
  return args


def _served_line(recorded, served_version, served_model) -> str:
  """Whether the evaluated model is the one served now."""
  if served_version is None:
    return "Served: nothing is served yet."
  if recorded.model is not None and recorded.model.uri == served_model:
    return f"Served: yes, this model is served now as version {served_version}."
  return (f"Served: NO, version {served_version} is served, not this model "
          "(--served shows its evaluation).")


def _report(recorded, family, layout):
  """report_files.find for one evaluation of `family`."""
  return report_files.find(
      recorded, os.path.join(layout.reports_dir(family.name), f"evaluation-{recorded.id}"),
      layout.serving_dir(family.name))


def _gone(recorded) -> str:
  return (f"Evaluation {recorded.id} has no report and its Evaluator output is gone "
          f"({recorded.evaluation.uri}): nothing to show.")


def _show(recorded, family, layout) -> int:
  found = _report(recorded, family, layout)
  if found is None:
    print(_gone(recorded), file=sys.stderr)
    return NOTHING_TO_SHOW
  print(f"Report: {found.html_path}")
  print(f"JSON:   {os.path.join(os.path.dirname(found.html_path), names.REPORT_JSON)}")
  print(f"Source: {found.source}")
  print(f"Evaluation: {recorded.id} ({recorded.evaluation.uri})")
  print(_served_line(recorded, *versions.served(layout.serving_dir(family.name))))
  print("\n".join(terminal.format_report(found.content)))
  return 0


def _interval(bounds) -> str:
  return f"[{bounds[0]:.4f}, {bounds[1]:.4f}]" if bounds else ""


def _list(recorded, family, layout, length: int) -> int:
  newest = recorded[-length:]
  shown = history.build(family.name, newest, [_report(r, family, layout) for r in newest],
                        layout.serving_dir(family.name))
  print(f"Evaluations of {family.name}, newest first ({len(shown['evaluations'])} of "
        f"{len(recorded)}; served now: version {shown['served_version'] or '-'}):")
  metric = shown["metric"] or "metric"
  print(f"  {'id':>6}  {'evaluated at':<23}  {'model':>6}  {metric + ' (95% interval)':<40}"
        f"  {'blessed':<7}  pushed")
  for entry in reversed(shown["evaluations"]):
    value = "-" if entry["value"] is None else f"{entry['value']:.4f} {_interval(entry['ci95'])}"
    pushed = entry["pushed_version"] or f"- ({entry['push_reason'] or 'not pushed'})"
    print(f"  {entry['evaluation_id']:>6}  {entry['evaluated_at']:<23}  "
          f"{str(entry['model_id']):>6}  {value:<40}  {'yes' if entry['blessed'] else 'NO':<7}"
          f"  {pushed}{'  <- served' if entry['served'] else ''}")
  return 0


def _history(recorded, family, layout) -> int:
  built = history.build(family.name, recorded, [_report(r, family, layout) for r in recorded],
                        layout.serving_dir(family.name))
  html_path, json_path = history.write(
      os.path.join(layout.reports_dir(family.name), "history"), built)
  print(f"History: {html_path}")
  print(f"JSON:    {json_path}")
  print(f"{len(built['evaluations'])} evaluation(s); served now: "
        f"version {built['served_version'] or '-'}")
  return 0


def _resolve(token: str, recorded, serving_dir: str):
  """The evaluation a pushed version's model had (its newest), or the one with id `token`."""
  models = {version: uri for uri, version in versions.versions_by_model(serving_dir).items()}
  if token in models:
    matching = [r for r in recorded if r.model is not None and r.model.uri == models[token]]
    return matching[-1] if matching else None
  return next((r for r in recorded if str(r.id) == token), None)


def _compare(recorded, family, layout, tokens) -> int:
  serving_dir = layout.serving_dir(family.name)
  chosen = []
  for token in tokens:
    found = _resolve(token, recorded, serving_dir)
    if found is None:
      print(f"{token}: no evaluation of {family.pipeline_name} has this id and no pushed "
            "version of it has this number (see --list).", file=sys.stderr)
      return NOTHING_TO_SHOW
    chosen.append(found)
  reports = [_report(one, family, layout) for one in chosen]
  for one, found in zip(chosen, reports):
    if found is None:
      print(_gone(one), file=sys.stderr)
      return NOTHING_TO_SHOW
  comparison = compare.build(chosen[0], chosen[1], reports[0], reports[1], serving_dir)
  html_path, json_path = compare.write(
      os.path.join(layout.reports_dir(family.name), f"compare-{tokens[0]}-{tokens[1]}"),
      comparison)
  print(f"Comparison: {html_path}")
  print(f"JSON:       {json_path}")
  print(f"A: evaluation {chosen[0].id}   B: evaluation {chosen[1].id}")
  return 0


def review(family: configs.FamilyConfig, layout: OutputLayout, args=None) -> int:
  sqlite_path = layout.metadata_path
  if not os.path.isfile(sqlite_path):
    print(f"No runs recorded: {sqlite_path} does not exist.", file=sys.stderr)
    return NOTHING_TO_SHOW
  recorded = locate.evaluations(locate.read_only_sqlite(sqlite_path), family.pipeline_name)
  if not recorded:
    print(f"No evaluation of {family.pipeline_name} recorded in {sqlite_path}.",
          file=sys.stderr)
    return NOTHING_TO_SHOW
  args = args or parse_args(["--model", family.name])
  if args.list is not None:
    return _list(recorded, family, layout, args.list)
  if args.history:
    return _history(recorded, family, layout)
  if args.compare:
    return _compare(recorded, family, layout, args.compare)
  chosen = recorded[-1]
  if args.evaluation is not None:
    chosen = next((r for r in recorded if r.id == args.evaluation), None)
    if chosen is None:
      print(f"No evaluation {args.evaluation} of {family.pipeline_name} in {sqlite_path} "
            "(see --list).", file=sys.stderr)
      return NOTHING_TO_SHOW
  elif args.served:
    version, model_uri = versions.served(layout.serving_dir(family.name))
    served = [r for r in recorded if r.model is not None and r.model.uri == model_uri]
    if not served:
      why = ("no version is served" if version is None else
             f"version {version} is served, but no evaluation of its model is recorded")
      print(f"Nothing to show: {why} ({layout.serving_dir(family.name)}).", file=sys.stderr)
      return NOTHING_TO_SHOW
    chosen = served[-1]
  return _show(chosen, family, layout)


def main(argv=None) -> int:
  args = parse_args(argv)
  family = configs.get_family(args.model)
  return review(family, OutputLayout(os.path.abspath(args.output_dir)), args)


if __name__ == "__main__":
  quiet_startup()
  # TFMA's readers trigger TensorFlow deprecation notices a reviewer cannot
  # act on; errors still print.
  logging.getLogger("tensorflow").setLevel(logging.ERROR)
  sys.exit(main())
