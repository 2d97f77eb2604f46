"""AnomaliesGate: stops the pipeline when the examples are not fit to train on.

ExampleValidator only records anomalies; on its own it lets Transform, Trainer
and Pusher go on with bad data. This component fails (so the orchestrator
stops every downstream component) with a message naming each split, feature
and problem, for four kinds of problem:

- schema anomalies ExampleValidator found in any split;
- string values that are not valid UTF-8 (TFDV counts them but raises no
  anomaly): every BYTES feature of our schemas is text or an id, binary data
  would carry an image_domain;
- skew: the eval split's distribution differs from the train split's beyond
  the curated schema's `skew_comparator` thresholds (the model would be
  judged on data unlike what it learnt from);
- drift: the train split's distribution differs from the curated reference
  statistics beyond the schema's `drift_comparator` thresholds (the data
  changed since the schema was curated; rebuild the reference with
  `python -m pipeline.reference_statistics` once the change is understood).

Skew and drift are TFDV's own comparators (tfdv.validate_statistics with
serving or previous statistics), which ExampleValidator does not run.
"""
import os
from typing import List

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT

ANOMALIES_FILE = "SchemaDiff.pb"
SCHEMA_FILE = "schema.pbtxt"


class DataAnomaliesError(RuntimeError):
  """Raised when the examples are not fit to train on: schema anomalies,
  text that is not valid UTF-8, train/eval skew or drift from the reference
  statistics (the message names each split, feature and problem)."""


def _describe(reasons) -> str:
  return "; ".join(r.description or r.short_description for r in reasons)


def describe_anomalies(anomalies_uri: str, split_names: List[str]) -> List[str]:
  """Returns one human-readable line per anomaly, across all splits."""
  problems = []
  for split in split_names:
    path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
    anomalies = anomalies_pb2.Anomalies.FromString(tf.io.gfile.GFile(path, "rb").read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      problems.append(f"split '{split}', feature '{feature}': {_describe(info.reason)}")
    if anomalies.HasField("dataset_anomaly_info"):
      problems.append(f"split '{split}', whole dataset: "
                      f"{_describe(anomalies.dataset_anomaly_info.reason)}")
  return problems


def describe_invalid_utf8(schema, statistics_by_split) -> List[str]:
  """One line per split and text feature holding values that are not UTF-8."""
  text_features = {feature.name for feature in schema.feature
                   if feature.type == schema_pb2.BYTES and not feature.HasField("image_domain")}
  problems = []
  for split, statistics in statistics_by_split.items():
    for feature in statistics.datasets[0].features:
      name = feature.path.step[0] if feature.path.step else feature.name
      count = feature.string_stats.invalid_utf8_count
      if name in text_features and count:
        problems.append(f"split '{split}', feature '{name}': {count} value(s) are not valid "
                        "UTF-8 (decode the source with its real encoding, or drop them)")
  return problems


def _comparator_problems(anomalies: anomalies_pb2.Anomalies, what: str) -> List[str]:
  """Lines for the comparator anomalies only (schema conformance is
  ExampleValidator's report, already checked)."""
  problems = []
  for feature, info in sorted(anomalies.anomaly_info.items()):
    reasons = [r for r in info.reason
               if anomalies_pb2.AnomalyInfo.Type.Name(r.type).startswith("COMPARATOR_")]
    if reasons:
      problems.append(f"{what}, feature '{feature}': {_describe(reasons)}")
  return problems


def describe_distribution_changes(
    schema, train: statistics_pb2.DatasetFeatureStatisticsList,
    eval_: statistics_pb2.DatasetFeatureStatisticsList,
    reference: statistics_pb2.DatasetFeatureStatisticsList = None) -> List[str]:
  """One line per skew (eval vs train) or drift (train vs reference) beyond
  the schema's comparator thresholds."""
  problems = _comparator_problems(
      tfdv.validate_statistics(train, schema, serving_statistics=eval_),
      "skew of the eval split against the train split")
  if reference is not None:
    problems += _comparator_problems(
        tfdv.validate_statistics(train, schema, previous_statistics=reference),
        "drift of the train split against the reference statistics")
  return problems


def _split_statistics(statistics: standard_artifacts.ExampleStatistics,
                      split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
  return stats_artifact_utils.load_statistics(statistics, split).proto()


def load_reference_statistics(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
  """The curated reference statistics (text proto), naming the file if it is missing."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"{path}: reference statistics not found; build them with "
                            "`python -m pipeline.reference_statistics`")
  return tfdv.load_stats_text(path)


@component
def AnomaliesGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    reference_statistics: Parameter[str] = "") -> None:
  """Fails the run on schema anomalies, train/eval skew or drift from the
  reference statistics (`reference_statistics`: a path; empty: no drift check)."""
  schema_proto = tfdv.load_schema_text(os.path.join(schema.uri, SCHEMA_FILE))
  by_split = {split: _split_statistics(statistics, split)
              for split in (TRAIN_SPLIT, VALIDATION_SPLIT, EVAL_SPLIT)}
  problems = describe_anomalies(anomalies.uri,
                                artifact_utils.decode_split_names(anomalies.split_names))
  problems += describe_invalid_utf8(schema_proto, by_split)
  if not problems:  # Distributions of malformed data say nothing more.
    problems = describe_distribution_changes(
        schema_proto, by_split[TRAIN_SPLIT], by_split[EVAL_SPLIT],
        load_reference_statistics(reference_statistics) if reference_statistics else None)
  if problems:
    # Data in spans: name the span the run was for (its window's newest,
    # which its eval split is; components/spans.py).
    examples = (f"the examples of the window ending at span {statistics.span} (fix that "
                "span's data, or the schema if the change is real)"
                if statistics.span else "the examples")
    raise DataAnomaliesError(
        f"{examples} are not fit to train on; nothing downstream was run:\n  "
        + "\n  ".join(problems))
