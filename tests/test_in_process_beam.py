"""TFX builds no worker package for Beam stages that run in process or with
the SDK harness in the launching process (LOOPBACK), and still builds it for
runners with workers."""
from tfx.utils import dependency_utils

from components import in_process_beam
from runners import beam_presets

FLINK_ARGS = ["--runner=FlinkRunner", "--flink_master=localhost:8081",
              "--environment_type=LOOPBACK"]


def test_only_the_in_memory_direct_runner_counts_as_in_process():
  assert in_process_beam.runs_in_process(beam_presets.DIRECT_ARGS)
  assert not in_process_beam.runs_in_process(FLINK_ARGS)
  assert not in_process_beam.runs_in_process(
      [*beam_presets.DIRECT_ARGS, "--direct_running_mode=multi_processing"])
  assert not in_process_beam.runs_in_process(["--runner=DataflowRunner"])


def test_tfx_packs_itself_only_for_runners_with_workers():
  in_process_beam.skip_worker_package_for_in_process_beam()
  in_process_beam.skip_worker_package_for_in_process_beam()  # idempotent
  assert dependency_utils.make_beam_dependency_flags(
      list(beam_presets.DIRECT_ARGS)) == beam_presets.DIRECT_ARGS
  # A LOOPBACK harness is the launching process: it has TFX already.
  assert dependency_utils.make_beam_dependency_flags(list(FLINK_ARGS)) == FLINK_ARGS
  with_workers = [*beam_presets.DIRECT_ARGS, "--direct_running_mode=multi_processing"]
  (added,) = dependency_utils.make_beam_dependency_flags(with_workers)[len(with_workers):]
  assert added.startswith("--extra_package=") and added.endswith(".tar.gz")
