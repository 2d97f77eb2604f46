"""Beam pipeline options for the Beam-based components, one preset per runner.

StatisticsGen, ExampleValidator's statistics, Transform and Evaluator are Beam
pipelines; where they run is decided by these options alone, for both
runners. A preset names the runner and the flags it cannot work without, so a
missing project or job endpoint fails when the arguments are checked, not
hours later inside a pod. On Kubeflow, workers of a distributed runner run
the pipeline image (`worker_image`): it holds the same TFX/TensorFlow stack as
the launcher and, through the base image's /opt/apache/beam/boot entrypoint,
is a valid Beam SDK container. A local run has no image: Flink runs the SDK
harness in the runner's own process (LOOPBACK), and Dataflow needs
`--beam-arg=--sdk_container_image=IMAGE`. A local run on Flink without
`--job-endpoint` starts Beam's Flink job server for the run
(runners/job_servers.py, `engine_for_run`): on a Flink MiniCluster, or on
the cluster `--flink-master` names.

Options given with --beam-arg are appended after the preset's; Beam keeps the
last value of a repeated flag, so they can also override a preset's value.
"""
import argparse
import contextlib
from typing import Iterator, List, Optional

from components.in_process_beam import IN_PROCESS_RUNNER
from runners import job_servers

DIRECT = "direct"
DATAFLOW = "dataflow"
FLINK = "flink"
PRESETS = (DIRECT, DATAFLOW, FLINK)

# In-process and single-threaded: on small machines and pods faster than
# multi-processing, whose start-up cost outweighs the work on small data.
# Beam's own in-process Python runner, named (components/in_process_beam.py
# names it): since Beam 2.68 `DirectRunner` first hands each pipeline to
# Prism, a Go binary it downloads at run time (without internet that attempt
# costs ~2 s per Beam stage before it falls back to this runner; with
# internet every stage would run on an engine nothing here tests).
DIRECT_ARGS = [f"--runner={IN_PROCESS_RUNNER}", "--direct_running_mode=in_memory"]
# Flags that only one preset reads, as argparse attribute names.
_PRESET_FLAGS = {DATAFLOW: ("gcp_project", "gcp_region", "temp_location"),
                 FLINK: ("flink_master", "job_endpoint")}


class BeamPresetError(ValueError):
  """A preset was chosen without the flags that its runner requires."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """Adds --beam-preset, the runners' own flags and --beam-arg to a runner's CLI."""
  group = parser.add_argument_group("Beam", "where the Beam-based components run")
  group.add_argument("--beam-preset", choices=PRESETS, default=DIRECT,
                     help="Beam runner of StatisticsGen, Transform and Evaluator "
                     "(default: %(default)s)")
  group.add_argument("--gcp-project", help="dataflow: Google Cloud project")
  group.add_argument("--gcp-region", help="dataflow: region of the Dataflow jobs")
  group.add_argument("--temp-location", help="dataflow: gs:// folder for temporary files")
  group.add_argument("--flink-master", help="flink: Flink JobManager REST address "
                     "(host:port). A local run starts Beam's Flink job server on it "
                     "(on a Flink MiniCluster when neither this nor --job-endpoint is "
                     "given; `make job-servers` fetches it); on Kubeflow the job is "
                     "submitted as an uber jar, so the launcher pod needs no Java")
  group.add_argument("--job-endpoint", help="flink: address of a running Beam job "
                     "server (host:port), used with the PortableRunner instead of "
                     "--flink-master")
  group.add_argument("--beam-arg", action="append", default=[],
                     help="extra Beam option appended after the preset's, e.g. "
                     "--beam-arg=--num_workers=4")


def _require(args: argparse.Namespace, preset: str, *names: str) -> None:
  """Names every missing flag at once, not one per attempt."""
  missing = [f"--{name.replace('_', '-')}" for name in names if not getattr(args, name)]
  if missing:
    raise BeamPresetError(f"--beam-preset {preset} needs {', '.join(missing)}")


def _dataflow(args: argparse.Namespace, worker_image: Optional[str]) -> List[str]:
  _require(args, DATAFLOW, "gcp_project", "gcp_region", "temp_location")
  if not args.temp_location.startswith("gs://"):
    raise BeamPresetError(
        f"--temp-location must be a gs:// folder for Dataflow, got {args.temp_location!r}")
  return ["--runner=DataflowRunner",
          f"--project={args.gcp_project}",
          f"--region={args.gcp_region}",
          f"--temp_location={args.temp_location}"] + (
              [f"--sdk_container_image={worker_image}"] if worker_image else [])


def managed_flink_master(args: argparse.Namespace) -> Optional[str]:
  """The Flink master a local run starts a job server on (`[local]`: a
  MiniCluster in the job server's JVM), or None where it starts none."""
  if args.beam_preset != FLINK or args.job_endpoint:
    return None
  return args.flink_master or job_servers.FLINK.local_master


def _flink(args: argparse.Namespace, worker_image: Optional[str]) -> List[str]:
  if args.flink_master and args.job_endpoint:
    raise BeamPresetError(
        f"--beam-preset {FLINK} takes one of --flink-master or --job-endpoint, not both")
  if not worker_image and not args.job_endpoint:
    # The job server engine_for_run starts; it adds its --job_endpoint.
    return ["--runner=PortableRunner", "--environment_type=LOOPBACK"]
  if not args.flink_master and not args.job_endpoint:
    raise BeamPresetError(
        f"--beam-preset {FLINK} on Kubeflow needs --flink-master or --job-endpoint")
  if args.flink_master:
    runner = ["--runner=FlinkRunner", f"--flink_master={args.flink_master}",
              "--flink_submit_uber_jar"]
  else:
    runner = ["--runner=PortableRunner", f"--job_endpoint={args.job_endpoint}"]
  if not worker_image:  # A local run: its own process has TFX and the project.
    return runner + ["--environment_type=LOOPBACK"]
  # The SDK harness defaults to Beam's own image, which lacks TFX.
  return runner + ["--environment_type=DOCKER", f"--environment_config={worker_image}"]


def beam_pipeline_args(args: argparse.Namespace,
                       worker_image: Optional[str] = None) -> List[str]:
  """The Beam options for the preset and flags parsed by `add_arguments`;
  `worker_image`: the SDK container of distributed workers (None: local run).

  Raises:
    BeamPresetError: the preset's runner lacks a flag it requires, or a flag
      of another preset was given (forgetting --beam-preset would otherwise
      silently run Beam in the pod).
  """
  for preset, names in _PRESET_FLAGS.items():
    stray = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n)]
    if stray and preset != args.beam_preset:
      raise BeamPresetError(f"{', '.join(stray)} only apply to --beam-preset {preset}")
  if args.beam_preset == DATAFLOW:
    preset_args = _dataflow(args, worker_image)
  elif args.beam_preset == FLINK:
    preset_args = _flink(args, worker_image)
  else:
    preset_args = list(DIRECT_ARGS)
  return preset_args + list(args.beam_arg)


@contextlib.contextmanager
def engine_for_run(args: argparse.Namespace, job_server_log: str) -> Iterator[List[str]]:
  """A local run's Beam options, with the job server its preset needs
  started for the run (`managed_flink_master`) and stopped after it; the
  job server's output goes to `job_server_log`."""
  master = managed_flink_master(args)
  if master is None:
    yield list(args.beam_args)
    return
  with job_servers.running(job_servers.FLINK, master, job_server_log) as endpoint:
    # First, so that a --beam-arg=--job_endpoint still has the last word.
    yield [f"--job_endpoint={endpoint}", *args.beam_args]
