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
- drift beyond the schema's `drift_comparator` thresholds. On data in
  spans, once a model trained on an older span is served: the new span
  (its eval examples, the only ones no earlier window held) against the
  train split that model learnt from, whose statistics it carries
  (components/atomic_pusher.py), found through the serving directory, so
  Kubeflow, which runs no resolvers, checks it the same way. Otherwise: the
  train split against the curated reference statistics (the data changed
  since the schema was curated; rebuild the reference with
  `python -m pipeline.reference_statistics` once the change is understood).
  A person who knows the shift is real accepts it (`accept_drift`): the run
  goes on and the `data_check` artifact records what was accepted, for the
  run summary and the report.

Skew and drift are TFDV's own comparators (tfdv.validate_statistics with
serving or previous statistics), which ExampleValidator does not run.
"""
import os
from typing import List, Optional, Tuple

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from components import atomic_pusher, push_records, spans
from modules.common.contract import EVAL_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT

ANOMALIES_FILE = "SchemaDiff.pb"
SCHEMA_FILE = "schema.pbtxt"
# The data_check artifact's custom properties: what the new data was checked
# for drift against, the findings (one per line), and whether a person
# accepted them.
DRIFT_AGAINST_KEY = "drift_against"
DRIFT_FINDINGS_KEY = "drift_findings"
DRIFT_ACCEPTED_KEY = "drift_accepted"
ACCEPT_DRIFT_HINT = "if the shift is real, re-run with --accept-drift to train on it"


class DataCheck(types.Artifact):
  """What the data gate checked and let through: custom properties
  drift_against, drift_findings and drift_accepted (0/1)."""
  # Kubeflow names a custom type `<namespace>.<Title>` and imports that name
  # (tfx_model_factory/__init__.py).
  TYPE_NAME = "tfx_model_factory.DataCheck"


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


def describe_skew(schema, train: statistics_pb2.DatasetFeatureStatisticsList,
                  eval_: statistics_pb2.DatasetFeatureStatisticsList) -> List[str]:
  """One line per feature whose eval split differs from the train split
  beyond the schema's skew comparator threshold."""
  return _comparator_problems(
      tfdv.validate_statistics(train, schema, serving_statistics=eval_),
      "skew of the eval split against the train split")


def describe_drift(schema, current: statistics_pb2.DatasetFeatureStatisticsList,
                   previous: statistics_pb2.DatasetFeatureStatisticsList,
                   what: str) -> List[str]:
  """One line per feature of `current` that drifted from `previous` beyond
  the schema's drift comparator threshold (TFDV's line names the distance
  and the threshold); `what` says which data against which."""
  return _comparator_problems(
      tfdv.validate_statistics(current, schema, previous_statistics=previous), what)


def served_training_statistics(serving_dir: str, span: int) -> Optional[
    Tuple[str, statistics_pb2.DatasetFeatureStatisticsList]]:
  """(description, statistics) of the train split the model served from a
  span older than `span` learnt from; None when no version under
  `serving_dir` was trained on an older span with its statistics recorded."""
  version, record = push_records.version_before_span(serving_dir, span)
  if version is None:
    return None
  path = atomic_pusher.training_statistics_path(serving_dir, version)
  if not tf.io.gfile.exists(path):
    return None
  trained_on = spans.SpanWindow(serving_dir, tuple(record[atomic_pusher.WINDOW_SPANS_KEY]))
  return (f"the training data of served version {version} ({trained_on.describe()})",
          tfdv.load_stats_binary(path))


def _split_statistics(statistics: standard_artifacts.ExampleStatistics,
                      split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
  return stats_artifact_utils.load_statistics(statistics, split).proto()


def load_reference_statistics(path: str) -> statistics_pb2.DatasetFeatureStatisticsList:
  """The curated reference statistics (text proto), naming the file if it is missing."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"{path}: reference statistics not found; build them with "
                            "`python -m pipeline.reference_statistics`")
  return tfdv.load_stats_text(path)


def check_drift(schema, by_split, span: int, serving_dir: str,
                reference_statistics: str) -> Tuple[str, List[str]]:
  """(what the data was compared with, one line per drifted feature): the
  new span against what the model served from an older span learnt, else
  the train split against the reference statistics; ("", []) when neither
  is there to compare with."""
  served = served_training_statistics(serving_dir, span) if serving_dir and span else None
  if served is not None:
    against, previous = served
    return against, describe_drift(schema, by_split[EVAL_SPLIT], previous,
                                   f"drift of span {span} (its eval examples) from {against}")
  if reference_statistics:
    return "the reference statistics", describe_drift(
        schema, by_split[TRAIN_SPLIT], load_reference_statistics(reference_statistics),
        "drift of the train split against the reference statistics")
  return "", []


@component
def AnomaliesGate(  # pylint: disable=invalid-name
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    data_check: OutputArtifact[DataCheck],
    reference_statistics: Parameter[str] = "",
    serving_dir: Parameter[str] = "",
    accept_drift: Parameter[int] = 0) -> None:
  """Fails the run on schema anomalies, train/eval skew or drift (see the
  module docstring; `reference_statistics`: a path, empty: none;
  `serving_dir`: where versions trained on earlier spans are served;
  `accept_drift` 1: record drift and go on)."""
  schema_proto = tfdv.load_schema_text(os.path.join(schema.uri, SCHEMA_FILE))
  by_split = {split: _split_statistics(statistics, split)
              for split in (TRAIN_SPLIT, VALIDATION_SPLIT, EVAL_SPLIT)}
  problems = describe_anomalies(anomalies.uri,
                                artifact_utils.decode_split_names(anomalies.split_names))
  problems += describe_invalid_utf8(schema_proto, by_split)
  if not problems:  # Distributions of malformed data say nothing more.
    problems = describe_skew(schema_proto, by_split[TRAIN_SPLIT], by_split[EVAL_SPLIT])
    against, drift = check_drift(schema_proto, by_split, statistics.span, serving_dir,
                                 reference_statistics)
    data_check.set_string_custom_property(DRIFT_AGAINST_KEY, against)
    data_check.set_string_custom_property(DRIFT_FINDINGS_KEY, "\n".join(drift))
    data_check.set_int_custom_property(DRIFT_ACCEPTED_KEY, int(bool(drift and accept_drift)))
    if drift and not accept_drift:
      problems += drift + [ACCEPT_DRIFT_HINT]
  if problems:
    # Data in spans: name the span the run was for (its window's newest,
    # which its eval split is; components/spans.py).
    examples = (f"the examples of the window ending at span {statistics.span} (fix that "
                "span's data, or the schema if the change is real)"
                if statistics.span else "the examples")
    raise DataAnomaliesError(
        f"{examples} are not fit to train on; nothing downstream was run:\n  "
        + "\n  ".join(problems))
