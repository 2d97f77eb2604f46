"""Compiles a family's Kubeflow spec with local roots and runs it here.

    python -m runners.kubeflow_local --model cnn [--output-dir outputs/kubeflow-local]
        [--target kfp] [--data-dir DIR] [--train-steps N] [--min-metric X] [--no-cache]
        [--artifact-types oss|spec] [--fresh-processes]
        [--span N] [--window K] [--cold-start] [--accept-drift]
        [--beam-preset flink --flink-master HOST:PORT | --beam-preset spark ...] [--beam-arg=...]

The spec is the one kubeflow_runner.py compiles (runners/kubeflow_spec.py),
with local roots under the output directory (pipeline_root/, serving/,
tflite/) and the checkout's schemas, written to `spec/<family>.yaml` there,
and executed task by task as the open-source KFP backend would
(runners/spec_executor.py); --span, --window and --accept-drift are the
run's values of the spec's run-time parameters, as a Kubeflow user gives
them to a run (runners/kubeflow_run_parameters.py). A second run against
the same output directory reuses cached tasks, takes the served model as its
baseline and pushes nothing new. Tasks are forked from one interpreter that
imported their runtime once; --fresh-processes starts each in a new
interpreter, as the image does. The Beam flags are kubeflow_runner.py's: with
`--beam-preset flink --flink-master HOST:PORT` every Beam task starts Beam's
Flink job server on that cluster, as in the image, and its SDK harness is the
Beam worker pool at `--beam-arg=--environment_config=HOST:PORT` (default
runners/beam_presets.WORKER_POOL_ENDPOINT). One run at a time per output
directory (runners/run_lock.py).
Exit status: 0 the run completed (blessed or not), 3 a task stopped on bad
data (the data gate, or the span resolution), 4 --require-blessing and the
model was not blessed, 5 another run holds the output directory, 1 any other
task failure, 2 bad arguments.
"""
import argparse
import dataclasses
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# After the Keras switch above.
from components.quiet_startup import quiet_startup  # noqa: E402
from runners import (beam_presets, kubeflow_run_parameters, kubeflow_spec,  # noqa: E402
                     preflight, roots, run_lock, spec_executor)
from runners.layout import OutputLayout, new_run_id  # noqa: E402

LOCAL_IMAGE = "local-checkout"  # Tasks run in this checkout, not in an image.


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m runners.kubeflow_local",
                                   description=__doc__.splitlines()[0])
  preflight.add_run_arguments(parser,
                              default_output_dir=os.path.join("outputs", "kubeflow-local"))
  parser.add_argument("--target", choices=[kubeflow_spec.KFP], default=kubeflow_spec.KFP,
                      help="only the open-source KFP target runs here (the vertex "
                      "target's resolvers run on Vertex AI only)")
  parser.add_argument("--artifact-types", choices=spec_executor.ARTIFACT_TYPES,
                      default=spec_executor.OSS_TYPES,
                      help="how tasks get their artifacts typed: oss, system.* as the "
                      "open-source launcher hands them (default); spec, as declared, "
                      "as Vertex AI hands them")
  parser.add_argument("--fresh-processes", action="store_true",
                      help="start every task in a new Python interpreter, as its container "
                      "does (default: fork each from one that imported TensorFlow, Beam and "
                      "TFX once, 8-12 s less per task)")
  beam_presets.add_arguments(parser)
  args = parser.parse_args(argv)
  try:
    args.beam_args = beam_presets.beam_pipeline_args(args, worker_image=LOCAL_IMAGE)
  except beam_presets.BeamPresetError as error:
    parser.error(str(error))
  return args, preflight.check_run_arguments(parser, args)


def _blessed(runs) -> bool:
  blessing = runs.get("Evaluator") and runs["Evaluator"].outputs.get("blessing")
  return bool(blessing) and blessing["metadata"].get("blessed") == 1


def _summary(runs) -> str:
  # pylint: disable=import-outside-toplevel
  from components.anomalies_gate import (DRIFT_ACCEPTED_KEY, DRIFT_AGAINST_KEY,
                                         DRIFT_FINDINGS_KEY)
  from components.push_records import NOT_PUSHED_REASON
  from components.warm_start import (BASE_SPAN_KEY, FOUND_KEY, NODE_ID as WARM_START_TASK,
                                     SERVED_VERSION_KEY)
  from runners import run_summary
  lines = ["", "Run summary", "-----------"]
  for run in runs.values():
    took = f"{run.seconds:.1f} s" if run.seconds is not None else "-"
    lines.append(f"  {run.name:<20} {run.state:<9} {took}")
  gate = runs.get("AnomaliesGate") and runs["AnomaliesGate"].outputs.get("data_check")
  if gate:
    lines.extend(run_summary.drift_lines(
        gate["metadata"].get(DRIFT_AGAINST_KEY, ""), gate["metadata"].get(DRIFT_FINDINGS_KEY, ""),
        gate["metadata"].get(DRIFT_ACCEPTED_KEY) == 1))
  base = runs.get(WARM_START_TASK) and runs[WARM_START_TASK].outputs.get("base_model")
  if base:
    lines.extend(run_summary.warm_start_lines(
        base["metadata"].get(FOUND_KEY) == 1, base["metadata"].get(SERVED_VERSION_KEY),
        int(base["metadata"].get(BASE_SPAN_KEY, 0))))
  if runs.get("Evaluator") and runs["Evaluator"].outputs.get("blessing"):
    lines.append(f"Blessed: {'yes' if _blessed(runs) else 'NO'}")
  pushed = runs.get("Pusher") and runs["Pusher"].outputs.get("pushed_model")
  if pushed:
    metadata = pushed["metadata"]
    lines.append(f"Pushed: {metadata['pushed_destination']}" if metadata.get("pushed") == 1
                 else f"Pushed: nothing ({metadata.get(NOT_PUSHED_REASON, 'not blessed')})")
  ui = runs.get("KubeflowUiArtifacts")
  if ui and ui.outputs:
    lines.append(f"UI artifacts: {ui.outputs['html']['uri']} (system.HTML), "
                 f"{ui.outputs['metrics']['uri']} (system.Metrics)")
  export = runs.get("TFLiteExporter") and runs["TFLiteExporter"].outputs.get("tflite_export")
  if export:
    metadata = export["metadata"]
    lines.append(f"TFLite: {metadata['tflite_destination']}" if metadata.get("exported") == 1
                 else f"TFLite: nothing ({metadata.get('reason', '')})")
  return "\n".join(lines)


def main(argv=None) -> int:
  args, family = parse_args(argv)
  run_id = new_run_id()
  with run_lock.take_or_exit(args.output_dir, run_id):
    return _run(args, family, run_id)


def _run(args, family, run_id: str) -> int:
  """One run, under the output directory's lock."""
  layout = OutputLayout(args.output_dir)
  # A local run's roots, but MLMD is the orchestrator's (here: none).
  spec_roots = dataclasses.replace(roots.local_roots(layout), metadata_path=None)
  spec = kubeflow_spec.compile_spec(family, spec_roots, args.target, LOCAL_IMAGE,
                                    args.beam_args, data_dir=args.data_dir,
                                    train_steps=args.train_steps,
                                    gate_min_value=args.min_metric,
                                    warm_start=not args.cold_start,
                                    compression=args.compression)
  spec_path = os.path.join(args.output_dir, "spec", f"{family.name}.yaml")
  kubeflow_spec.write_spec(spec, spec_path)
  try:
    executor = spec_executor.SpecExecutor(
        spec, enable_cache=not args.no_cache, artifact_types=args.artifact_types,
        run_id=run_id, fresh_processes=args.fresh_processes,
        parameter_values=kubeflow_run_parameters.values(args.span, args.window,
                                                        args.accept_drift))
  except spec_executor.SpecError as error:
    print(f"error: {spec_path}: {error}", file=sys.stderr)
    return 1
  print(f"Running {spec_path} on {preflight.describe_input(args.data_dir, args.span_window)} "
        f"(run {executor.run_id}) under {layout.pipeline_root}",
        flush=True)
  runs = executor.run()
  print(_summary(runs))
  failed = [run for run in runs.values() if run.state == "failed"]
  if not failed:
    if args.require_blessing and not _blessed(runs):
      print("\nNOT BLESSED: --require-blessing was given and the gate did not bless "
            "the model", file=sys.stderr)
      return preflight.EXIT_NOT_BLESSED
    return 0
  # What a task stopped by bad data raises, named in its log.
  # pylint: disable=import-outside-toplevel
  from components.anomalies_gate import DataAnomaliesError
  from components.input_errors import BAD_INPUT_PREFIX
  tail = spec_executor.failure_log_tail(failed[0])
  print(f"\nFAILED: task {failed[0].name} (log: {failed[0].log_path})\n{tail}", file=sys.stderr)
  stopped_by_data = DataAnomaliesError.__name__ in tail or BAD_INPUT_PREFIX in tail
  return preflight.EXIT_DATA_ANOMALIES if stopped_by_data else 1


if __name__ == "__main__":
  quiet_startup()
  sys.exit(main())
