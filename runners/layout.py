"""The local runner's output directory, named in one place.

    OUTPUT/
      pipeline_root/            TFX artifacts
      metadata.sqlite           MLMD
      serving/<family>/<N>/     TF Serving model directory (AtomicPusher)
      tflite/<family>/<N>/      TFLite versions (TFLiteExporter)
      logs/                     one full log per run
      reports/<family>/         reports the review CLI regenerates

The runner, the review CLI, bench/ and the end-to-end tests all find these
paths through OutputLayout, so none of them can drift from the others.
"""
import dataclasses
import os


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

  def serving_dir(self, family_name: str) -> str:
    """The TF Serving model directory of a family: numbered versions inside."""
    return os.path.join(self.serving_root, family_name)

  def tflite_dir(self, family_name: str) -> str:
    """The TFLite directory of a family: the same version numbers as serving."""
    return os.path.join(self.tflite_root, family_name)

  def reports_dir(self, family_name: str) -> str:
    return os.path.join(self.root, "reports", family_name)
