"""No TFX package built for Beam workers that do not exist.

Before every Beam-based component (ExampleGen, StatisticsGen, Transform,
Evaluator) TFX copies its installed tree and builds an sdist of it
(`tfx.utils.dependency_utils.make_beam_dependency_flags`), so that remote
Beam workers can install TFX, unless the Beam options already name a
package, setup file, requirements file or worker image. That costs 2.5 s per
component on a two-core machine: about 10 s of every local run and of every
Kubeflow run whose Beam stages run in the task's pod.

The in-process runner this project's `direct` preset selects
(`--runner=FnApiRunner --direct_running_mode=in_memory`) runs every stage
in the launching process: it stages nothing and ignores `--extra_package`,
so the package is built for nobody; nor does a portable runner whose SDK
harness is the launching process (`--environment_type=LOOPBACK`, a local
run on Flink). `skip_worker_package_for_in_process_beam` makes TFX skip it
for exactly those options; with workers of their own (Flink or Dataflow
workers, a multi-process direct runner) TFX still builds it as before.
"""
import functools
from typing import List

# Beam's in-process Python runner: what `DirectRunner` falls back to when it
# cannot hand a pipeline to Prism; the `direct` preset names it
# (runners/beam_presets.py).
IN_PROCESS_RUNNER = "FnApiRunner"
IN_PROCESS_MODE = "in_memory"


def runs_in_process(beam_pipeline_args: List[str]) -> bool:
  """Whether these Beam options run every stage in the launching process."""
  # pylint: disable=import-outside-toplevel  (Beam only when a component runs)
  from apache_beam.options.pipeline_options import PipelineOptions
  options = PipelineOptions(flags=beam_pipeline_args).get_all_options()
  return (options.get("runner") == IN_PROCESS_RUNNER
          and options.get("direct_running_mode") == IN_PROCESS_MODE)


def harness_in_launching_process(beam_pipeline_args: List[str]) -> bool:
  """Whether a portable runner runs the SDK harness in the launching process."""
  # pylint: disable=import-outside-toplevel  (Beam only when a component runs)
  from apache_beam.options.pipeline_options import PipelineOptions
  return PipelineOptions(flags=beam_pipeline_args).get_all_options().get(
      "environment_type") == "LOOPBACK"


def skip_worker_package_for_in_process_beam() -> None:
  """Makes TFX's Beam executors in this process build no worker package when
  their Beam options run in process. Idempotent."""
  # pylint: disable=import-outside-toplevel
  from tfx.utils import dependency_utils
  tfx_flags = dependency_utils.make_beam_dependency_flags
  if getattr(tfx_flags, "skips_in_process_beam", False):
    return

  @functools.wraps(tfx_flags)
  def dependency_flags(beam_pipeline_args: List[str]) -> List[str]:
    if runs_in_process(beam_pipeline_args) or harness_in_launching_process(beam_pipeline_args):
      return beam_pipeline_args
    return tfx_flags(beam_pipeline_args)

  dependency_flags.skips_in_process_beam = True
  dependency_utils.make_beam_dependency_flags = dependency_flags
