"""Builds the TFMA EvalConfig of a family: gated metric, reported metrics, slices.

Every metric comes with TFMA's own 95% confidence interval, for candidate,
baseline and their difference, overall and per slice, so the report can tell a
real change from noise. The jackknife (20 delete-d buckets over the examples
TFMA already scored) is the cheaper of TFMA's two methods: no example is
scored twice, only the metric accumulators are combined once per bucket.
The gate itself still compares TFMA's point estimates. Every metric,
intermediate ones included, is recomputed for each of the 20 samples on
every slice, so a family's metrics must be cheap to combine: the CNN gates
on a counting metric (modules/cnn/metrics.py), the LSTM's AUC uses 1,000
thresholds (pipeline/configs.py). bench/evaluator_intervals.py measures
what the intervals cost.

The model is declared a generic TF SavedModel (`TF_GENERIC`), which it is to
TFMA: scored through its signatures only, with no compiled Keras metrics to
add. Left undeclared, TFMA finds the type by loading the model with Keras
once more, then scores it through a Keras load: for the LSTM that took
50.6 s against 30.8 s declared, with the same metrics to the last digit.
"""
from typing import Optional

from google.protobuf import wrappers_pb2
import tensorflow_model_analysis as tfma

from modules.common import contract
from pipeline.configs import FamilyConfig, Gate

CONFIDENCE_INTERVAL_METHOD = tfma.ConfidenceIntervalOptions.JACKKNIFE


def _value_threshold(gate: Gate, min_value: float) -> tfma.GenericValueThreshold:
  bound = {"value": min_value}
  return (tfma.GenericValueThreshold(lower_bound=bound) if gate.higher_is_better
          else tfma.GenericValueThreshold(upper_bound=bound))


def _change_threshold(gate: Gate) -> tfma.GenericChangeThreshold:
  direction = (tfma.MetricDirection.HIGHER_IS_BETTER if gate.higher_is_better
               else tfma.MetricDirection.LOWER_IS_BETTER)
  regression = -gate.max_regression if gate.higher_is_better else gate.max_regression
  return tfma.GenericChangeThreshold(direction=direction, absolute={"value": regression})


def _overall(threshold: tfma.MetricThreshold) -> list:
  return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]


def build_eval_config(family: FamilyConfig,
                      min_value_override: Optional[float] = None) -> tfma.EvalConfig:
  """The candidate (and, when one exists, the blessed baseline) are scored
  through the family's tf.Example signature (`serving_default` unless the
  family names another) on raw tf.Examples, exactly as served.
  """
  gate = family.gate
  min_value = gate.min_value if min_value_override is None else min_value_override
  value = _value_threshold(gate, min_value)
  change = _change_threshold(gate)
  gated = tfma.MetricConfig(
      class_name=gate.metric, module=gate.module or "", config=gate.config_json or "",
      per_slice_thresholds=_overall(
          tfma.MetricThreshold(value_threshold=value) if gate.change_metric
          else tfma.MetricThreshold(value_threshold=value, change_threshold=change)))
  reported = []
  for metric in family.reported_metrics:
    config = tfma.MetricConfig(class_name=metric.class_name, module=metric.module or "",
                               config=metric.config_json or "")
    if (metric.class_name, metric.config_json) == (gate.change_metric,
                                                   gate.change_config_json):
      config.per_slice_thresholds.extend(_overall(
          tfma.MetricThreshold(change_threshold=change)))
    reported.append(config)
  return tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          model_type=tfma.TF_GENERIC,
          signature_name=family.eval_signature,
          label_key=family.label_key,
          prediction_key=family.prediction_key,
          preprocessing_function_names=[contract.TRANSFORM_SIGNATURE])],
      metrics_specs=[tfma.MetricsSpec(metrics=[gated] + reported)],
      slicing_specs=[tfma.SlicingSpec()] + [
          tfma.SlicingSpec(feature_keys=[key]) for key in family.slice_features],
      options=tfma.Options(
          compute_confidence_intervals=wrappers_pb2.BoolValue(value=True),
          confidence_intervals=tfma.ConfidenceIntervalOptions(
              method=CONFIDENCE_INTERVAL_METHOD)))
