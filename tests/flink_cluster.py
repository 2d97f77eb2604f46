"""A Flink session cluster on this machine, as a Kubeflow Beam task compiled
with `--flink-master HOST:PORT` meets one on a cluster: a JobManager (its REST
endpoint is HOST:PORT) and a TaskManager, each in its own JVM, started from
the Flink 1.19 jars `make job-servers` fetched; and beside the TaskManager a
Beam worker pool, the SDK harness that the pipeline image runs as the task
manager's sidecar on Kubernetes (`/opt/apache/beam/boot --worker_pool`),
here this checkout's interpreter running Beam's own worker pool, its SDK
workers in threads.

Outside the Flink distribution there are no start scripts to size a
TaskManager's memory, so the configuration names every part of it.
"""
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Dict, Iterator, List

from components import job_servers

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READY_TIMEOUT_S = 120.0
_CONFIGURATION = {
    # Two cores shared with the suite's other worker: the JobManager's RPCs to
    # the TaskManager must not time out after the default 10 s.
    "pekko.ask.timeout": "120 s",
    "heartbeat.timeout": "180000",
    "jobmanager.memory.process.size": "1024m",
    "taskmanager.cpu.cores": "2",
    "taskmanager.numberOfTaskSlots": "2",
    "taskmanager.memory.framework.heap.size": "128m",
    "taskmanager.memory.task.heap.size": "512m",
    "taskmanager.memory.managed.size": "256m",
    "taskmanager.memory.framework.off-heap.size": "128m",
    "taskmanager.memory.task.off-heap.size": "0m",
    # A batch job's every blocking result partition takes at least
    # sort-shuffle.min-buffers network buffers (32 KB; default 512): TFDV's
    # statistics job and TFMA's jackknife (20 partitions of every slice) have
    # hundreds of partitions.
    "taskmanager.memory.network.min": "1024mb",
    "taskmanager.memory.network.max": "1024mb",
    "taskmanager.network.sort-shuffle.min-buffers": "64",
    "taskmanager.memory.jvm-metaspace.size": "256m",
    "taskmanager.memory.jvm-overhead.min": "192m",
    "taskmanager.memory.jvm-overhead.max": "192m",
}


# Beam's worker pool with its SDK workers as threads of one process, which
# imports TFX's Beam code once for every job (as LOOPBACK does): the image's
# sidecar starts each worker as a process, which here would add 5-10 s of
# imports to each of the dozen workers a run's jobs ask for.
_WORKER_POOL = """
import sys, time
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
# The server stops once nothing holds it.
address, server = BeamFnExternalWorkerPoolServicer.start(use_process=False, port=int(sys.argv[1]))
while True:
  time.sleep(3600)
"""


@dataclasses.dataclass(frozen=True)
class FlinkCluster:
  rest_address: str   # host:port, what --flink-master names
  worker_pool: str    # host:port of the Beam worker pool (EXTERNAL environment)
  log_dir: str

  def jobs(self) -> List[Dict]:
    """Every job the cluster ran or runs: name, state, duration (ms), ..."""
    with urllib.request.urlopen(f"http://{self.rest_address}/jobs/overview", timeout=10) as r:
      return json.load(r)["jobs"]

  def overview(self) -> Dict:
    with urllib.request.urlopen(f"http://{self.rest_address}/overview", timeout=10) as r:
      return json.load(r)


def _start(argv: List[str], log_path: str, **kwargs) -> subprocess.Popen:
  with open(log_path, "ab") as log:
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, **kwargs)


def _wait_until(ready, what: str, processes: List[subprocess.Popen], log_dir: str) -> None:
  deadline = time.monotonic() + READY_TIMEOUT_S
  while not ready():
    exited = [p.args for p in processes if p.poll() is not None]
    assert not exited, f"{exited} exited before {what} (see {log_dir})"
    assert time.monotonic() < deadline, f"no {what} within {READY_TIMEOUT_S:.0f} s (see {log_dir})"
    time.sleep(0.5)


@contextlib.contextmanager
def flink_session_cluster(work_dir: str) -> Iterator[FlinkCluster]:
  """Starts the cluster and the worker pool for the block; stops them after."""
  conf_dir = os.path.join(work_dir, "conf")
  os.makedirs(conf_dir, exist_ok=True)
  rest_port, pool_port = job_servers.free_port(), job_servers.free_port()
  conf = {"jobmanager.rpc.address": "localhost",
          "jobmanager.rpc.port": str(job_servers.free_port()),
          "rest.address": "localhost", "rest.bind-address": "localhost",
          "rest.port": str(rest_port), "taskmanager.host": "localhost", **_CONFIGURATION}
  with open(os.path.join(conf_dir, "flink-conf.yaml"), "w", encoding="utf-8") as f:
    f.writelines(f"{key}: {value}\n" for key, value in conf.items())
  classpath = job_servers.FLINK.classpath()
  java = ["java", "-cp", classpath]
  # This interpreter, with this checkout importable, as the pipeline image has them.
  pool_env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_USE_LEGACY_KERAS="1")
  processes = []
  try:
    processes.append(_start(
        [*java, "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint",
         "--configDir", conf_dir], os.path.join(work_dir, "jobmanager.log")))
    processes.append(_start(
        [*java, "org.apache.flink.runtime.taskexecutor.TaskManagerRunner",
         "--configDir", conf_dir], os.path.join(work_dir, "taskmanager.log")))
    processes.append(_start([sys.executable, "-c", _WORKER_POOL, str(pool_port)],
                            os.path.join(work_dir, "worker-pool.log"), env=pool_env,
                            cwd=REPO_ROOT))
    cluster = FlinkCluster(f"localhost:{rest_port}", f"localhost:{pool_port}", work_dir)

    def task_manager_registered() -> bool:
      try:
        return cluster.overview()["taskmanagers"] == 1
      except OSError:
        return False

    _wait_until(task_manager_registered, "a registered TaskManager", processes, work_dir)
    _wait_until(lambda: job_servers.accepts(pool_port), "a listening worker pool", processes,
                work_dir)
    yield cluster
  finally:
    for process in processes:
      process.terminate()
    for process in processes:
      try:
        process.wait(timeout=30)
      except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
