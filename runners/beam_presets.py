"""Beam pipeline options for the Beam-based components, one preset per runner.

StatisticsGen, ExampleValidator's statistics, Transform and Evaluator are Beam
pipelines; where they run is decided by these options alone, for both
runners. A preset names the runner and the flags it cannot work without, so a
missing project or job endpoint fails when the arguments are checked, not
hours later inside a pod.

Flink and Spark stages go through Beam's job server for the engine. A local
run starts it for the run (components/job_servers.py, `engine_for_run`): on
the engine's local master (a Flink MiniCluster; Spark's `local[2]`) or on
the cluster `--flink-master` / `--spark-master-url` names, with the SDK
harness in the run's own process (LOOPBACK). On Kubeflow the spec carries
Beam's own flags for the cluster (`--runner=FlinkRunner --flink_master=...`)
and every Beam task starts the job server the pipeline image carries on it
(components/kfp_entrypoint.py), or submits to `--job-endpoint`; the SDK
harness is the pipeline image run as a Beam worker pool beside each task
manager (EXTERNAL, `WORKER_POOL_ENDPOINT`). Dataflow's workers run the
pipeline image (`worker_image`) as their SDK container; a local run on
Dataflow needs `--beam-arg=--sdk_container_image=IMAGE`.

Options given with --beam-arg are appended after the preset's; Beam keeps the
last value of a repeated flag, so they can also override a preset's value.
"""
import argparse
import contextlib
import os
from typing import Iterator, List, Optional, Tuple

from components.in_process_beam import IN_PROCESS_RUNNER
from components import job_servers
from pipeline.configs import REPO_ROOT

DIRECT = "direct"
DATAFLOW = "dataflow"
FLINK = "flink"
SPARK = "spark"
PRESETS = (DIRECT, DATAFLOW, FLINK, SPARK)
# The engines a Beam job server hands the stages to, by preset.
JOB_SERVER_PRESETS = {FLINK: job_servers.FLINK, SPARK: job_servers.SPARK}
# What Beam builds the package of this project from for workers that do not
# run the pipeline image (Dataflow from a local run).
SETUP_FILE = os.path.join(REPO_ROOT, "setup.py")

# In-process and single-threaded: on small machines and pods faster than
# multi-processing, whose start-up cost outweighs the work on small data.
# Beam's own in-process Python runner, named (components/in_process_beam.py
# names it): since Beam 2.68 `DirectRunner` first hands each pipeline to
# Prism, a Go binary it downloads at run time (without internet that attempt
# costs ~2 s per Beam stage before it falls back to this runner; with
# internet every stage would run on an engine nothing here tests).
DIRECT_ARGS = [f"--runner={IN_PROCESS_RUNNER}", "--direct_running_mode=in_memory"]
# On Kubeflow the SDK harness of a Flink or Spark stage is the pipeline image
# run as a Beam worker pool (`/opt/apache/beam/boot --worker_pool`) beside
# every task manager or executor, which the runner reaches on this address.
WORKER_POOL_ENDPOINT = "localhost:50000"
# How long a job-server engine keeps an SDK harness environment that no stage
# holds (Beam's default: 0, none). Without it every Spark or Flink task that
# runs Python starts a new harness and sets its transforms up again (TFMA
# loads the model again): the CNN's Evaluator took 37 s on Spark, 30 s with
# it, and the in-process runner 9 s.
ENVIRONMENT_CACHE_ARGS = ["--environment_cache_millis=60000"]
# The flags that only some presets read (argparse attribute names), and those presets.
_PRESET_FLAGS = {"gcp_project": (DATAFLOW,), "gcp_region": (DATAFLOW,),
                 "temp_location": (DATAFLOW,), "flink_master": (FLINK,),
                 "spark_master_url": (SPARK,), "job_endpoint": (FLINK, SPARK)}
# The flag naming each job-server preset's cluster, as argparse attribute names.
_MASTER_FLAGS = {FLINK: "flink_master", SPARK: "spark_master_url"}


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
                     "(host:port). Every run or Beam task starts Beam's Flink job server "
                     "on it (`make job-servers` fetches it; the image carries it); a local "
                     "run without this or --job-endpoint uses a Flink MiniCluster")
  group.add_argument("--spark-master-url", help="spark: Spark master (spark://host:7077 "
                     "or local[N]). Every run or Beam task starts Beam's Spark job server "
                     "on it; a local run without this or --job-endpoint uses "
                     f"{job_servers.SPARK.local_master}")
  group.add_argument("--job-endpoint", help="flink, spark: address of a running Beam job "
                     "server (host:port), used with the PortableRunner instead of a master")
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
  # Dataflow's workers run the pipeline image on Kubeflow; from a local run
  # they get the project as the package its setup.py builds.
  return ["--runner=DataflowRunner",
          f"--project={args.gcp_project}",
          f"--region={args.gcp_region}",
          f"--temp_location={args.temp_location}"] + (
              [f"--sdk_container_image={worker_image}"] if worker_image
              else [f"--setup_file={SETUP_FILE}"])


def managed_job_server(
    args: argparse.Namespace) -> Optional[Tuple[job_servers.JobServer, str]]:
  """The job server a local run starts, and the master it starts it on (its
  engine's local master when no master flag is given), or None where it
  starts none."""
  server = JOB_SERVER_PRESETS.get(args.beam_preset)
  if server is None or args.job_endpoint:
    return None
  return server, getattr(args, _MASTER_FLAGS[args.beam_preset]) or server.local_master


def _job_server_preset(args: argparse.Namespace, worker_image: Optional[str]) -> List[str]:
  preset = args.beam_preset
  master_flag = "--" + _MASTER_FLAGS[preset].replace("_", "-")
  master = getattr(args, _MASTER_FLAGS[preset])
  if master and args.job_endpoint:
    raise BeamPresetError(
        f"--beam-preset {preset} takes one of {master_flag} or --job-endpoint, not both")
  if not worker_image:
    # A local run's own process has TFX and the project: the SDK harness runs
    # in it. The job server engine_for_run starts adds its --job_endpoint.
    endpoint = [f"--job_endpoint={args.job_endpoint}"] if args.job_endpoint else []
    return ["--runner=PortableRunner", *endpoint, "--environment_type=LOOPBACK",
            *ENVIRONMENT_CACHE_ARGS]
  if not master and not args.job_endpoint:
    raise BeamPresetError(
        f"--beam-preset {preset} on Kubeflow needs {master_flag} or --job-endpoint")
  if master:
    # Beam's own flags for the cluster; the task's entrypoint starts the job
    # server the image carries on it (components/kfp_entrypoint.py).
    server = JOB_SERVER_PRESETS[preset]
    target = [f"--runner={server.beam_runner}", f"--{server.beam_master_option}={master}"]
  else:
    target = ["--runner=PortableRunner", f"--job_endpoint={args.job_endpoint}"]
  return target + ["--environment_type=EXTERNAL", f"--environment_config={WORKER_POOL_ENDPOINT}",
                   *ENVIRONMENT_CACHE_ARGS]


def beam_pipeline_args(args: argparse.Namespace,
                       worker_image: Optional[str] = None) -> List[str]:
  """The Beam options for the preset and flags parsed by `add_arguments`;
  `worker_image`: the SDK container of distributed workers (None: local run).

  Raises:
    BeamPresetError: the preset's runner lacks a flag it requires, or a flag
      of another preset was given (forgetting --beam-preset would otherwise
      silently run Beam in the pod).
  """
  for name, presets in _PRESET_FLAGS.items():
    if getattr(args, name) and args.beam_preset not in presets:
      raise BeamPresetError(f"--{name.replace('_', '-')} only applies to --beam-preset "
                            f"{' or '.join(presets)}")
  if args.beam_preset == DATAFLOW:
    preset_args = _dataflow(args, worker_image)
  elif args.beam_preset in JOB_SERVER_PRESETS:
    preset_args = _job_server_preset(args, worker_image)
  else:
    preset_args = list(DIRECT_ARGS)
  return preset_args + list(args.beam_arg)


@contextlib.contextmanager
def engine_for_run(args: argparse.Namespace, job_server_log: str,
                   output_dir: str) -> Iterator[List[str]]:
  """A local run's Beam options, with the job server its preset needs
  started for the run (`managed_job_server`) and stopped after it; the job
  server's output goes to `job_server_log`. Every run into `output_dir`
  gets the same endpoint (`job_servers.stable_port`), so that a run again
  is answered from the cache."""
  managed = managed_job_server(args)
  if managed is None:
    yield list(args.beam_args)
    return
  port = job_servers.stable_port(os.path.abspath(output_dir))
  with job_servers.running(*managed, job_server_log, port=port) as endpoint:
    # First, so that a --beam-arg=--job_endpoint still has the last word.
    yield [f"--job_endpoint={endpoint}", *args.beam_args]
