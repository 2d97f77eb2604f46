"""Beam job servers for the engines a local run can hand its Beam stages to.

`--beam-preset flink` (or `spark`) runs StatisticsGen, Transform and
Evaluator as portable Beam jobs on that engine: the runner starts Beam's
job server for the engine (a JVM) for the run, on its local master (`[local]`:
a Flink MiniCluster inside that JVM; `local[2]`: Spark's local mode) or the
master it was given, submits each stage to it with the SDK harness in the
run's own process (LOOPBACK), and stops it when the run ends.

The job server's jars are fetched once, at set-up (`make job-servers`, i.e.
`python -m components.job_servers fetch`), from Maven Central into a cache
outside the checkout, every jar checked against the SHA-256 pinned in
components/job_server_locks/<engine>.lock; a run never downloads anything and
stops with one line naming the make target when they are missing. A lock
is written by `python -m components.job_servers lock ENGINE` (needs Maven): it
resolves the engine's `dependencies` and their runtime closure.

Which Beam: the pinned Python SDK is 2.74.0, but Maven Central as reached
here serves Beam's Flink and Spark runners only up to 2.70.0 and their job
service only up to 2.65.0 (the shaded `beam-runners-*-job-server` jars not
at all), so each job server is assembled from Beam 2.62.0's runner, the
newest version whose runner and job service are both served, and its
runtime dependencies (Flink 1.19.0; Spark 3.2.2, the version that runner is
built against, with the Jackson Scala module Beam's own Jackson needs). The
portability protocol between the 2.74 SDK harness and those runners is what
the e2e test checks: the stages' outputs equal the in-process runner's.
"""
import argparse
import contextlib
import dataclasses
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent import futures
from typing import Dict, Iterator, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK_DIR = os.path.join(HERE, "job_server_locks")
# The Flink configuration (flink-conf.yaml) the Flink job server runs with.
FLINK_CONF_DIR = os.path.join(HERE, "flink_conf")
# Where fetched jars are kept, outside the checkout, so a clean clone reuses them.
CACHE_ROOT_ENV = "TFX_MODEL_FACTORY_CACHE"
MAVEN_REPOSITORY_ENV = "MAVEN_REPOSITORY"
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
FETCH_COMMAND = "make job-servers"
# Written into a cache folder once every jar matched the lock.
VERIFIED_MARKER = "VERIFIED"
READY_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class JobServer:
  """One engine's Beam job server: the artifacts its lock is resolved from,
  its main class, master flag and local master, the flags of its own
  configuration and the JVM's."""
  engine: str
  main_class: str
  master_flag: str
  local_master: str
  # Beam's Python runner for the engine, and its option naming the cluster.
  beam_runner: str = ""
  beam_master_option: str = ""
  # group:artifact:version of what the lock's runtime closure is resolved from.
  dependencies: Tuple[str, ...] = ()
  config_flags: Tuple[str, ...] = ()
  jvm_flags: Tuple[str, ...] = ()

  @property
  def lock_path(self) -> str:
    return os.path.join(LOCK_DIR, f"{self.engine}.lock")

  def pinned(self) -> Dict[str, str]:
    """group:artifact:version -> SHA-256 of its jar, from the lock."""
    with open(self.lock_path, encoding="utf-8") as f:
      return dict(line.split() for line in f if line.strip())

  def cache_dir(self) -> str:
    """The jars' folder, named by the lock's content: a changed lock is fetched anew."""
    with open(self.lock_path, "rb") as f:
      lock_digest = hashlib.sha256(f.read()).hexdigest()[:16]
    root = os.environ.get(CACHE_ROOT_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "tfx-model-factory")
    return os.path.join(root, "job-servers", f"{self.engine}-{lock_digest}")

  def classpath(self) -> str:
    """The fetched jars as a Java classpath; raises naming the make target if absent."""
    folder = self.cache_dir()
    if not os.path.exists(os.path.join(folder, VERIFIED_MARKER)):
      raise JobServerError(
          f"the {self.engine} job server is not fetched ({folder} is missing or incomplete): "
          f"run `{FETCH_COMMAND}` first")
    return os.path.join(folder, "*")


BEAM_JAVA_VERSION = "2.62.0"
# A job server's JVM, sized so that a local run's memory is bounded by what is
# set here, not by the machine or the data: by default the heap may take a
# quarter of the RAM (Spark's local[2] took 6.7 GB at 3M interactions), and a
# Flink MiniCluster's managed memory (set in flink_conf/) 40% of the free heap
# on top. Heap 1.5 GB; direct memory (Flink's 256 MB of network buffers,
# gRPC's buffers) 768 MB. Sorts and shuffles past them spill to disk.
JVM_MEMORY_FLAGS = ("-Xmx1536m", "-XX:MaxDirectMemorySize=768m")
_JOB_SERVICE = f"org.apache.beam:beam-runners-java-job-service:{BEAM_JAVA_VERSION}"
FLINK = JobServer(engine="flink", main_class="org.apache.beam.runners.flink.FlinkJobServerDriver",
                  master_flag="--flink-master", local_master="[local]",
                  beam_runner="FlinkRunner", beam_master_option="flink_master",
                  dependencies=(f"org.apache.beam:beam-runners-flink-1.19:{BEAM_JAVA_VERSION}",
                                _JOB_SERVICE, "org.slf4j:slf4j-simple:1.7.30"),
                  config_flags=("--flink-conf-dir", FLINK_CONF_DIR),
                  jvm_flags=JVM_MEMORY_FLAGS)
# Spark 3.2 reaches into these JDK packages; Java 17 closes them unless opened
# (the flags Spark's own launcher adds from 3.3 on).
_SPARK_OPENED_PACKAGES = (
    "java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net", "java.nio",
    "java.util", "java.util.concurrent", "java.util.concurrent.atomic", "sun.nio.ch",
    "sun.nio.cs", "sun.security.action", "sun.util.calendar")
SPARK_VERSION = "3.2.2"
# Beam's Spark runner keeps its SparkContext between pipelines when this is set
# (SparkContextFactory; "test" in its name, but not only for tests).
SPARK_REUSE_CONTEXT_PROPERTY = "beam.spark.test.reuseSparkContext"
SPARK = JobServer(engine="spark", main_class="org.apache.beam.runners.spark.SparkJobServerDriver",
                  master_flag="--spark-master-url", local_master="local[2]",
                  beam_runner="SparkRunner", beam_master_option="spark_master_url",
                  # Spark is a provided dependency of Beam's runner: named here,
                  # and Spark 3.2's Jackson Scala module raised to Beam's Jackson.
                  dependencies=(f"org.apache.beam:beam-runners-spark-3:{BEAM_JAVA_VERSION}",
                                _JOB_SERVICE,
                                *(f"org.apache.spark:spark-{module}_2.12:{SPARK_VERSION}"
                                  for module in ("core", "streaming", "sql")),
                                "com.fasterxml.jackson.module:jackson-module-scala_2.12:2.15.4"),
                  jvm_flags=(*JVM_MEMORY_FLAGS,
                             *(f"--add-opens=java.base/{package}=ALL-UNNAMED"
                               for package in _SPARK_OPENED_PACKAGES),
                             # One SparkContext for every pipeline the job server
                             # runs (a run's every Beam stage), not a new one for each.
                             f"-D{SPARK_REUSE_CONTEXT_PROPERTY}=true"))
JOB_SERVERS = {server.engine: server for server in (FLINK, SPARK)}


class JobServerError(RuntimeError):
  """A job server could not be fetched, found or started."""


def _jar_url(coordinate: str, repository: str) -> str:
  group, artifact, version = coordinate.split(":")
  return f"{repository}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"


def _download(url: str, path: str, sha256: str) -> None:
  digest = hashlib.sha256()
  with urllib.request.urlopen(url, timeout=120) as response, open(path, "wb") as out:
    for block in iter(lambda: response.read(1 << 20), b""):
      digest.update(block)
      out.write(block)
  if digest.hexdigest() != sha256:
    raise JobServerError(f"{url}: SHA-256 {digest.hexdigest()} is not the pinned {sha256}")


def fetch(server: JobServer, repository: str = "") -> str:
  """Downloads the server's pinned jars into its cache folder (nothing if
  already there), checking each against the lock; returns the folder."""
  folder = server.cache_dir()
  if os.path.exists(os.path.join(folder, VERIFIED_MARKER)):
    return folder
  repository = repository or os.environ.get(MAVEN_REPOSITORY_ENV) or MAVEN_CENTRAL
  os.makedirs(os.path.dirname(folder), exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{server.engine}-", dir=os.path.dirname(folder))
  try:
    pinned = server.pinned()
    with futures.ThreadPoolExecutor(max_workers=8) as pool:
      downloads = [pool.submit(_download, _jar_url(coordinate, repository),
                               os.path.join(staging, coordinate.replace(":", "_") + ".jar"),
                               sha256)
                   for coordinate, sha256 in pinned.items()]
      for download in downloads:
        download.result()
    with open(os.path.join(staging, VERIFIED_MARKER), "w", encoding="utf-8") as f:
      f.write(f"{len(pinned)} jars matched {server.lock_path}\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.rename(staging, folder)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return folder


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tfx-model-factory</groupId><artifactId>{engine}-job-server</artifactId><version>0</version>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""


def _pom(server: JobServer) -> str:
  dependencies = "\n".join(
      "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version>"
      "</dependency>".format(*coordinate.split(":")) for coordinate in server.dependencies)
  return _POM.format(engine=server.engine, dependencies=dependencies)


def _coordinate(repository_root: str, jar_path: str) -> str:
  """group:artifact:version of a jar laid out as in a Maven repository."""
  *group, artifact, version, _ = os.path.relpath(jar_path, repository_root).split(os.sep)
  return f"{'.'.join(group)}:{artifact}:{version}"


def lock(server: JobServer) -> str:
  """Resolves the server's dependencies and their runtime closure with Maven
  (`mvn` on PATH) and writes every jar's SHA-256 to its lock; returns the lock's path."""
  if not shutil.which("mvn"):
    raise JobServerError("writing a lock needs Maven on PATH (Debian: apt-get install maven)")
  with tempfile.TemporaryDirectory(prefix=f"{server.engine}-lock-") as work:
    with open(os.path.join(work, "pom.xml"), "w", encoding="utf-8") as f:
      f.write(_pom(server))
    repository = os.path.join(work, "jars")
    resolved = subprocess.run(
        ["mvn", "-q", "-B", "dependency:copy-dependencies", "-DincludeScope=runtime",
         "-Dmdep.useRepositoryLayout=true", f"-DoutputDirectory={repository}"],
        cwd=work, capture_output=True, text=True, check=False)
    if resolved.returncode:
      raise JobServerError(f"Maven could not resolve the {server.engine} job server:\n"
                           f"{resolved.stdout[-3000:]}{resolved.stderr[-3000:]}")
    lines = []
    for folder, _, files in os.walk(repository):
      for name in files:
        if name.endswith(".jar"):
          with open(os.path.join(folder, name), "rb") as jar:
            sha256 = hashlib.sha256(jar.read()).hexdigest()
          lines.append(f"{_coordinate(repository, os.path.join(folder, name))} {sha256}\n")
  with open(server.lock_path, "w", encoding="utf-8") as f:
    f.writelines(sorted(lines))
  return server.lock_path


def java_major_version(java: str = "java") -> int:
  """The major version of `java` (0 when there is none)."""
  if not shutil.which(java):
    return 0
  out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
  version = out.split('"')[1] if '"' in out else "0"
  major = version.split(".")[1] if version.startswith("1.") else version.split(".")[0]
  return int(major) if major.isdigit() else 0


def free_port() -> int:
  """A port no process listens on now."""
  with socket.socket() as probe:
    probe.bind(("localhost", 0))
    return probe.getsockname()[1]


# Below Linux's ephemeral range (32768-60999), where free ports are handed out.
STABLE_PORTS = range(20000, 30000)


def stable_port(key: str) -> int:
  """The job port for runs keyed by `key` (an output directory): the same for
  every run of it. The endpoint is one of the Beam options TFX hashes into a
  component's cache key, so a port picked afresh would make every run on the
  engine miss the cache."""
  digest = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16)
  return STABLE_PORTS.start + digest % len(STABLE_PORTS)


def _bindable(port: int) -> bool:
  with socket.socket() as probe:
    try:
      probe.bind(("localhost", port))
    except OSError:
      return False
    return True


def accepts(port: int) -> bool:
  """Whether something listens on localhost:`port`."""
  with socket.socket() as probe:
    probe.settimeout(1.0)
    return probe.connect_ex(("localhost", port)) == 0


def command(server: JobServer, master: str, job_port: int) -> List[str]:
  """The job server's command line: its own JVM, on `master`."""
  return ["java", *server.jvm_flags, "-cp", server.classpath(), server.main_class,
          f"{server.master_flag}={master}", *server.config_flags, "--job-port", str(job_port),
          "--artifact-port", "0", "--expansion-port", "0"]


@contextlib.contextmanager
def running(server: JobServer, master: str, log_path: Optional[str],
            port: int = 0) -> Iterator[str]:
  """Starts the job server on `master` for the block; yields its endpoint
  (localhost:PORT); stops it after. Its output goes to `log_path` (None:
  this process's stderr). It listens on `port` (0, or one another process
  holds: a free one)."""
  if java_major_version() < 11:
    raise JobServerError(f"the {server.engine} job server needs Java 11 or newer on PATH "
                         "(Debian: apt-get install openjdk-17-jre-headless)")
  if not port or not _bindable(port):
    port = free_port()
  argv = command(server, master, port)
  if log_path is None:
    process = subprocess.Popen(argv, stdout=sys.stderr, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
  else:
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "ab") as log:
      process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
  try:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not accepts(port):
      if process.poll() is not None:
        raise JobServerError(f"the {server.engine} job server exited with status "
                             f"{process.returncode} before it listened (see {log_path})")
      if time.monotonic() > deadline:
        raise JobServerError(f"the {server.engine} job server did not listen on port {port} "
                             f"within {READY_TIMEOUT_S:.0f} s (see {log_path})")
      time.sleep(0.2)
    yield f"localhost:{port}"
  finally:
    process.terminate()
    try:
      process.wait(timeout=30)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


def _option(beam_args: List[str], name: str) -> Optional[str]:
  """The last value of Beam option `--name=value` (Beam keeps the last), or None."""
  values = [arg.split("=", 1)[1] for arg in beam_args if arg.startswith(f"--{name}=")]
  return values[-1] if values else None


def cluster_of(beam_args: List[str]) -> Optional[Tuple[JobServer, str]]:
  """The job server and cluster master that Beam options naming an engine's
  own runner and its master (`--runner=FlinkRunner --flink_master=HOST:PORT`)
  ask for, or None."""
  runner = _option(beam_args, "runner")
  for server in JOB_SERVERS.values():
    master = _option(beam_args, server.beam_master_option)
    if runner == server.beam_runner and master:
      return server, master
  return None


@contextlib.contextmanager
def submitting_to_cluster(beam_args: List[str]) -> Iterator[List[str]]:
  """Beam options that reach the cluster `cluster_of(beam_args)` names
  through a job server started here, from the fetched jars, for the block:
  Beam's own runners would download the job server's jar in the middle of
  the run (and Maven Central as reached here serves none). Options that name
  no cluster are yielded as they are."""
  cluster = cluster_of(beam_args)
  if cluster is None:
    yield list(beam_args)
    return
  server, _ = cluster
  replaced = ("--runner=", f"--{server.beam_master_option}=")
  kept = [arg for arg in beam_args if not arg.startswith(replaced)]
  with running(*cluster, log_path=None) as endpoint:
    yield ["--runner=PortableRunner", f"--job_endpoint={endpoint}", *kept]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      description="Fetches Beam job servers' pinned jars (fetch), or pins them anew (lock).")
  parser.add_argument("action", choices=["fetch", "lock"])
  parser.add_argument("engines", nargs="*", metavar="ENGINE",
                      help=f"one of {sorted(JOB_SERVERS)} (default: every one)")
  args = parser.parse_args(argv)
  unknown = sorted(set(args.engines) - set(JOB_SERVERS))
  if unknown:
    parser.error(f"no job server for {unknown}; known: {sorted(JOB_SERVERS)}")
  action = fetch if args.action == "fetch" else lock
  for engine in args.engines or sorted(JOB_SERVERS):
    try:
      print(f"{engine} job server: {action(JOB_SERVERS[engine])}")
    except (JobServerError, OSError) as error:
      print(f"{engine} job server: {error}", file=sys.stderr)
      return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
