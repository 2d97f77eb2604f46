"""The local runner's output directory, named in one place.

    OUTPUT/
      pipeline_root/            TFX artifacts
      metadata.sqlite           MLMD
      serving/<family>/<N>/     TF Serving model directory (AtomicPusher)
      tflite/<family>/<N>/      TFLite versions (TFLiteExporter)
      logs/<family>-<run id>.log  one full log per run
      .run.lock                 held by the run using the directory (runners/run_lock.py)
      reports/<family>/         reports the review CLI regenerates

The runner, the review CLI, bench/ and the end-to-end tests all find these
paths through OutputLayout, so none of them can drift from the others.
"""
import dataclasses
import os
import time
import uuid


def new_run_id() -> str:
  """A run's id: its start time, readable, and a random part, so two runs
  started in the same second never share an id, a log file or a folder."""
  return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


@dataclasses.dataclass(frozen=True)
class OutputLayout:
  """Paths under one local output directory `root`."""
  root: str

  @property
  def pipeline_root(self) -> str:
    return os.path.join(self.root, "pipeline_root")

  @property
  def metadata_path(self) -> str:
    return os.path.join(self.root, "metadata.sqlite")

  @property
  def serving_root(self) -> str:
    return os.path.join(self.root, "serving")

  @property
  def tflite_root(self) -> str:
    return os.path.join(self.root, "tflite")

  @property
  def logs_dir(self) -> str:
    return os.path.join(self.root, "logs")

  @property
  def lock_path(self) -> str:
    return os.path.join(self.root, ".run.lock")

  def log_path(self, family_name: str, run_id: str) -> str:
    """The full log of one run (`new_run_id()`)."""
    return os.path.join(self.logs_dir, f"{family_name}-{run_id}.log")

  def job_server_log_path(self, family_name: str, run_id: str) -> str:
    """The log of the Beam job server a run started (components/job_servers.py)."""
    return os.path.join(self.logs_dir, f"{family_name}-{run_id}-job-server.log")

  def serving_dir(self, family_name: str) -> str:
    """The TF Serving model directory of a family: numbered versions inside."""
    return os.path.join(self.serving_root, family_name)

  def tflite_dir(self, family_name: str) -> str:
    """The TFLite directory of a family: the same version numbers as serving."""
    return os.path.join(self.tflite_root, family_name)

  def reports_dir(self, family_name: str) -> str:
    return os.path.join(self.root, "reports", family_name)
