"""Builds the curated reference statistics the drift check compares runs with.

    .venv/bin/python -m pipeline.reference_statistics [--model cnn lstm two_tower]

For each family, reads the train split of its shipped data exactly as the
pipeline's ExampleGen splits it (the family's example source), computes TFDV statistics the way
StatisticsGen does (default options, no schema), keeps the features the
schema's drift comparators read, and writes them as a text proto beside the
family's schema (FamilyConfig.reference_statistics_path).
Rebuild them, and review the diff, whenever the shipped data changes on
purpose; AnomaliesGate then stops any run whose train split drifts from them
beyond the schema's drift_comparator thresholds.
"""
import argparse
import os
import sys
import tempfile
from typing import Iterable

from apache_beam.options.pipeline_options import PipelineOptions
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.in_process_beam import IN_PROCESS_RUNNER
from modules.common.contract import TRAIN_SPLIT
from pipeline import configs


def compute(records: Iterable[bytes]) -> statistics_pb2.DatasetFeatureStatisticsList:
  """TFDV statistics of serialized tf.Examples, with StatisticsGen's defaults."""
  with tempfile.TemporaryDirectory() as work_dir:
    path = os.path.join(work_dir, "examples.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
      for record in records:
        writer.write(record)
    # On Beam's in-process runner, named, as the pipeline's stages run
    # (runners/beam_presets.py): TFDV's default DirectRunner would try Prism.
    return tfdv.generate_statistics_from_tfrecord(
        path, pipeline_options=PipelineOptions([f"--runner={IN_PROCESS_RUNNER}"]))


def compared_features_only(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                           schema) -> statistics_pb2.DatasetFeatureStatisticsList:
  """Keeps the features the schema has a drift comparator for: the file
  holds what the check reads (a review text's top values would be 1 MB)."""
  compared = {feature.name for feature in schema.feature
              if feature.HasField("drift_comparator")}
  for dataset in statistics.datasets:
    kept = [f for f in dataset.features if f.path.step and f.path.step[0] in compared]
    del dataset.features[:]
    dataset.features.extend(kept)
  return statistics


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", nargs="+", default=sorted(configs.FAMILIES),
                      choices=sorted(configs.FAMILIES))
  args = parser.parse_args(argv)
  for name in args.model:
    family = configs.get_family(name)
    data_dir = os.path.join(configs.DEFAULT_DATA_ROOT, family.data_subdir)
    statistics = compared_features_only(
        compute(family.example_source.records(data_dir, TRAIN_SPLIT)),
        tfdv.load_schema_text(family.schema_path()))
    tfdv.write_stats_text(statistics, family.reference_statistics_path())
    print(f"{family.reference_statistics_path()}: "
          f"{statistics.datasets[0].num_examples} train examples")
  return 0


if __name__ == "__main__":
  sys.exit(main())
