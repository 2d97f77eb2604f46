"""Runs one model family's pipeline locally with TFX's LocalDagRunner.

    python local_runner.py --model cnn [--output-dir ./outputs] [--data-dir DIR]
        [--train-steps N] [--min-metric X] [--no-cache] [--no-drift-check]
        [--span N] [--window K] [--cold-start] [--accept-drift]
        [--beam-preset direct|dataflow|flink|spark ...] [--beam-arg=--flag=value ...]

Everything goes under the output directory (runners/layout.py); MLMD is a
sqlite file there. Beam components run on Beam's in-process FnApiRunner unless
--beam-preset or --beam-arg say otherwise. Exit status: 0 when
the run completed (blessed or not, the summary says), 3 when the data failed
validation, 4 when --require-blessing was given and the model was not
blessed, 5 when another run holds the output directory (runners/run_lock.py),
1 on any other failure (any component's), 2 on bad arguments.
"""
import argparse
import logging
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# After the Keras switch above.
from components.quiet_startup import quiet_startup, send_hidden_lines_to  # noqa: E402
from components import job_servers  # noqa: E402
from runners import beam_presets, preflight, run_lock  # noqa: E402
from runners.layout import OutputLayout, new_run_id  # noqa: E402


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  preflight.add_run_arguments(parser, default_output_dir="outputs")
  parser.add_argument("--no-drift-check", action="store_true",
                      help="do not compare the train split with the shipped reference "
                      "statistics (for data of your own; train/eval skew is still checked)")
  beam_presets.add_arguments(parser)
  args = parser.parse_args(argv)
  try:
    args.beam_args = beam_presets.beam_pipeline_args(args)
    managed = beam_presets.managed_job_server(args)
    if managed:
      managed[0].classpath()  # Fetched at set-up, or one line naming the make target.
  except (beam_presets.BeamPresetError, job_servers.JobServerError) as error:
    parser.error(str(error))
  return args, preflight.check_run_arguments(parser, args)


def _route_logs(log_path: str, progress: logging.Handler) -> None:
  """Full logs to a file; only component progress to the terminal."""
  from absl import logging as absl_logging
  absl_logging.use_python_logging(quiet=True)
  root = logging.getLogger()
  for handler in list(root.handlers):
    root.removeHandler(handler)
  file_handler = logging.FileHandler(log_path)
  file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
  root.addHandler(file_handler)
  root.addHandler(progress)
  root.setLevel(logging.INFO)
  # Through absl's verbosity flag, not the logger: TensorFlow's SavedModel
  # code saves and restores that flag, which would reset a logger-only level.
  absl_logging.set_verbosity(absl_logging.INFO)
  tf_logger = logging.getLogger("tensorflow")  # TF logs through its own handler.
  for handler in list(tf_logger.handlers):
    tf_logger.removeHandler(handler)
  tf_logger.propagate = True


def main(argv=None) -> int:
  args, family = parse_args(argv)
  run_id = new_run_id()
  with run_lock.take_or_exit(args.output_dir, run_id):
    job_server_log = OutputLayout(args.output_dir).job_server_log_path(family.name, run_id)
    try:
      with beam_presets.engine_for_run(args, job_server_log, args.output_dir) as beam_args:
        return _run(args, family, run_id, beam_args)
    except job_servers.JobServerError as error:
      print(f"FAILED: {error}", file=sys.stderr)
      return 1


def _run(args, family, run_id: str, beam_args) -> int:
  """One run, under the output directory's lock."""
  # Heavy imports, after the arguments are checked and the lock is taken.
  from tfx.dsl.components.common import resolver  # pylint: disable=import-outside-toplevel
  from components.anomalies_gate import DataAnomaliesError  # pylint: disable=import-outside-toplevel
  from pipeline import pipeline  # pylint: disable=import-outside-toplevel
  from runners import roots, run_summary  # pylint: disable=import-outside-toplevel
  from runners.run_id_dag_runner import RunIdDagRunner  # pylint: disable=import-outside-toplevel

  layout = OutputLayout(args.output_dir)
  os.makedirs(layout.logs_dir, exist_ok=True)
  log_path = layout.log_path(family.name, run_id)
  arguments = roots.pipeline_arguments(
      family, roots.local_roots(layout), data_dir=args.data_dir,
      beam_pipeline_args=beam_args, drift_check=not args.no_drift_check,
      enable_cache=not args.no_cache, train_steps=args.train_steps,
      gate_min_value=args.min_metric, span_request=args.span_request,
      warm_start=not args.cold_start, accept_drift=args.accept_drift,
      compression=args.compression)
  tfx_pipeline = pipeline.create_pipeline(**arguments)
  resolver_ids = frozenset(c.id for c in tfx_pipeline.components
                           if isinstance(c, resolver.Resolver))
  _route_logs(log_path, run_summary.ProgressPrinter(sys.stdout, resolver_ids))
  send_hidden_lines_to(log_path)
  print(f"Running {family.pipeline_name} on "
        f"{preflight.describe_input(args.data_dir, args.span_window)} "
        f"(run {run_id}, logs: {log_path})", flush=True)
  status, failure = 0, None
  try:
    RunIdDagRunner(run_id).run(tfx_pipeline)
  except Exception as error:  # pylint: disable=broad-except
    logging.exception("The run failed")  # The whole traceback, in the run's log.
    failure = error
    status = preflight.EXIT_DATA_ANOMALIES if isinstance(error, DataAnomaliesError) else 1
  node_ids = [c.id for c in tfx_pipeline.components]
  runs = run_summary.read_node_runs(arguments["metadata_connection_config"],
                                     family.pipeline_name, node_ids, run_id, resolver_ids)
  print(run_summary.format_summary(runs))
  failed = run_summary.failed(runs)
  if failure is not None:
    print(f"\nFAILED: {failure}", file=sys.stderr)
  elif failed:
    print(f"\nFAILED: {', '.join(failed)} (see {log_path})", file=sys.stderr)
    status = 1
  elif args.require_blessing and not run_summary.blessed(runs):
    print("\nNOT BLESSED: --require-blessing was given and the gate did not bless the "
          "model (see Thresholds above)", file=sys.stderr)
    status = preflight.EXIT_NOT_BLESSED
  return status


if __name__ == "__main__":
  quiet_startup()
  sys.exit(main())
