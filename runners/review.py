"""Review a model family's latest evaluation from the terminal.

    python -m runners.review --model cnn [--output-dir ./outputs]

Looks the family's latest evaluation up in the local runner's MLMD
(`<output-dir>/metadata.sqlite`) and prints where its report is and a summary:
overall metrics of candidate and baseline, each threshold passed or failed,
and the blessing. When no report was recorded for that evaluation (runs from
before EvalReport existed, or its files are gone), the report is regenerated
from the Evaluator output into `<output-dir>/reports/<family>/evaluation-<id>/`.
Exit status: 0 shown, 1 nothing to show, 2 bad arguments.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# After the Keras switch above.
from pipeline import configs  # noqa: E402
from runners.layout import OutputLayout  # noqa: E402


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m runners.review",
                                   description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, choices=sorted(configs.FAMILIES),
                      help="model family")
  parser.add_argument("--output-dir", default="outputs",
                      help="the local runner's output directory (holds metadata.sqlite)")
  return parser.parse_args(argv)


def review(family: configs.FamilyConfig, layout: OutputLayout) -> int:
  # Heavy imports, after the arguments are checked.
  # pylint: disable=import-outside-toplevel
  from tfx import v1 as tfx
  from components.eval_report import locate, report, results, terminal
  from components.eval_report.component import BLESSED_KEY

  sqlite_path = layout.metadata_path
  if not os.path.isfile(sqlite_path):
    print(f"No runs recorded: {sqlite_path} does not exist.", file=sys.stderr)
    return 1
  latest = locate.latest_evaluation(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(sqlite_path),
      family.pipeline_name)
  if latest is None:
    print(f"No evaluation of {family.pipeline_name} recorded in {sqlite_path}.",
          file=sys.stderr)
    return 1
  blessing = latest.blessing.custom_properties.get(BLESSED_KEY) if latest.blessing else None
  blessed = blessing is not None and blessing.int_value == 1
  recorded = latest.report and os.path.join(latest.report.uri, report.REPORT_HTML)
  if recorded and os.path.isfile(recorded):
    html_path = recorded
    source = f"recorded by the pipeline (EvaluationReport artifact {latest.report.id})"
  else:
    model_uri = latest.model.uri if latest.model else ""
    model_id = latest.model.id if latest.model else None
    html_path, _ = report.write(
        os.path.join(layout.reports_dir(family.name), f"evaluation-{latest.evaluation.id}"),
        latest.evaluation.uri, blessed, model_uri, model_id)
    source = (f"regenerated from evaluation artifact {latest.evaluation.id} "
              "(no report recorded for it)")
  print(f"Report: {html_path}")
  print(f"JSON:   {os.path.join(os.path.dirname(html_path), report.REPORT_JSON)}")
  print(f"Source: {source}")
  print(f"Evaluation: {latest.evaluation.uri}")
  evaluation = results.load_evaluation(latest.evaluation.uri)
  print("\n".join(terminal.format_evaluation(evaluation, blessed)))
  return 0


def main(argv=None) -> int:
  args = parse_args(argv)
  family = configs.get_family(args.model)
  return review(family, OutputLayout(os.path.abspath(args.output_dir)))


if __name__ == "__main__":
  sys.exit(main())
