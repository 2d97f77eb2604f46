"""AnomaliesGate: stops the pipeline when ExampleValidator found anomalies.

ExampleValidator only records anomalies; on its own it lets Transform, Trainer
and Pusher go on with bad data. This component reads the anomalies of every
split and fails (so the orchestrator stops every downstream component) with a
message naming each split, feature and anomaly.
"""
import os
from typing import List

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomaliesError(RuntimeError):
  """Raised when the examples do not conform to the curated schema."""


def describe_anomalies(anomalies_uri: str, split_names: List[str]) -> List[str]:
  """Returns one human-readable line per anomaly, across all splits."""
  problems = []
  for split in split_names:
    path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
    anomalies = anomalies_pb2.Anomalies.FromString(tf.io.gfile.GFile(path, "rb").read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      reasons = "; ".join(r.description or r.short_description for r in info.reason)
      problems.append(f"split '{split}', feature '{feature}': {reasons}")
    if anomalies.HasField("dataset_anomaly_info"):
      reasons = "; ".join(r.description or r.short_description
                          for r in anomalies.dataset_anomaly_info.reason)
      problems.append(f"split '{split}', whole dataset: {reasons}")
  return problems


@tfx.dsl.components.component
def AnomaliesGate(  # pylint: disable=invalid-name
    anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies]) -> None:
  """Fails the run when any split has anomalies against the schema."""
  splits = artifact_utils.decode_split_names(anomalies.split_names)
  problems = describe_anomalies(anomalies.uri, splits)
  if problems:
    raise DataAnomaliesError(
        "ExampleValidator found data anomalies; nothing downstream was run:\n  "
        + "\n  ".join(problems))
