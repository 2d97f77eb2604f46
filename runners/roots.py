"""One builder of `create_pipeline` arguments for every runner.

A deployment is a set of roots (local directories or URIs): where TFX keeps
artifacts, where the data is, where models are pushed for TF Serving and
for TFLite, where the curated schemas are, and MLMD. `pipeline_arguments`
turns roots into the arguments of `pipeline.create_pipeline` for a family,
so every output is wired the same way in every runner: a runner chooses
roots, never paths of single outputs.
"""
import dataclasses
from typing import Any, Dict, List, Optional

from components.uris import join
from pipeline import configs
from runners.layout import OutputLayout


@dataclasses.dataclass(frozen=True)
class Roots:
  """Where one deployment reads and writes; each family gets a folder in each.

  `tflite_root` None: no TFLite export (say why where a runner chooses it).
  `metadata_path` None: the orchestrator supplies MLMD (Kubeflow); else the
  SQLite file of a local run.
  """
  pipeline_root: str
  data_root: str
  serving_root: str
  tflite_root: Optional[str]
  schema_root: str = configs.SCHEMA_ROOT
  metadata_path: Optional[str] = None


def local_roots(layout: OutputLayout, data_root: str = configs.DEFAULT_DATA_ROOT) -> Roots:
  """A local run's roots: everything under its output directory."""
  return Roots(pipeline_root=layout.pipeline_root, data_root=data_root,
               serving_root=layout.serving_root, tflite_root=layout.tflite_root,
               metadata_path=layout.metadata_path)


def pipeline_arguments(family: configs.FamilyConfig, roots: Roots, *,
                       beam_pipeline_args: List[str], data_dir: Optional[str] = None,
                       drift_check: bool = True, **options: Any) -> Dict[str, Any]:
  """Keyword arguments of `pipeline.create_pipeline` for `family` in `roots`.

  Args:
    family: the model family.
    roots: where the deployment reads and writes.
    beam_pipeline_args: options of the Beam-based components (beam_presets).
    data_dir: the family's data when not `<data_root>/<family.data_subdir>`.
    drift_check: compare the train split with the family's reference
      statistics (under the schema root).
    **options: the remaining `create_pipeline` arguments (enable_cache,
      train_steps, gate_min_value, baseline_strategy, tflite_quantization).
  """
  metadata = None
  if roots.metadata_path is not None:
    # pylint: disable=import-outside-toplevel
    from tfx.orchestration import metadata as tfx_metadata
    metadata = tfx_metadata.sqlite_metadata_connection_config(
        roots.metadata_path)
  return dict(
      family=family,
      pipeline_root=roots.pipeline_root,
      data_dir=data_dir or join(roots.data_root, family.data_subdir),
      schema_path=family.schema_path(roots.schema_root),
      reference_statistics_path=(family.reference_statistics_path(roots.schema_root)
                                 if drift_check else None),
      serving_model_dir=join(roots.serving_root, family.name),
      tflite_dir=join(roots.tflite_root, family.name) if roots.tflite_root else None,
      beam_pipeline_args=beam_pipeline_args,
      metadata_connection_config=metadata,
      **options)
