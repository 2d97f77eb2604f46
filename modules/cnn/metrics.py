"""The CNN's gated TFMA metric: top-1 accuracy from counts.

The figure is tf_keras' SparseCategoricalAccuracy (the arg-max of the class
probabilities equals the label; the first maximum wins a tie), under the
same metric name, so reports and model histories compare with evaluations
made before it. It is computed by a counting combiner instead of TFMA's
wrapper of the Keras metric: the wrapper runs TensorFlow ops batch by batch
on each of the jackknife's 20 partitions of every slice, which made the
confidence intervals cost 2.3x the Evaluator's time (pipeline/evaluation.py).

Used from the EvalConfig as MetricConfig(class_name="SparseCategoricalAccuracy",
module="modules.cnn.metrics").
"""
from typing import Dict, Iterable, Optional, Tuple

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

from modules.cnn import features

NAME = "sparse_categorical_accuracy"
# Accumulator: (examples whose top class is the label, examples).
Counts = Tuple[float, float]


class SparseCategoricalAccuracy(metric_types.Metric):
  """Share of examples whose most probable class is the label."""

  def __init__(self, name: Optional[str] = None):
    super().__init__(metric_util.merge_per_key_computations(self._computations),
                     name=name or NAME)

  def _computations(self, name: str, model_name: str = "", output_name: str = "",
                    example_weighted: bool = False, **_unused
                    ) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    return [metric_types.MetricComputation(
        keys=[key], preprocessors=None,
        combiner=_TopOneCombiner(key, model_name, output_name, example_weighted))]


def top_one_hits(labels, probabilities) -> np.ndarray:
  """1.0 where the arg-max class of a row of probabilities is its label.
  `probabilities` may be the signature's outputs, not yet picked out by
  TFMA (ModelSpec.prediction_key)."""
  if isinstance(probabilities, dict):
    probabilities = probabilities[features.PROBABILITIES]
  labels = np.reshape(np.asarray(labels), [-1]).astype(np.int64)
  probabilities = np.reshape(np.asarray(probabilities, dtype=np.float64),
                             [-1, features.NUM_CLASSES])
  if labels.size != probabilities.shape[0]:
    raise ValueError(f"{labels.size} labels for {probabilities.shape[0]} rows of "
                     f"{features.NUM_CLASSES} class probabilities")
  return (np.argmax(probabilities, axis=-1) == labels).astype(np.float64)


class _TopOneCombiner(beam.CombineFn):
  """Accumulates (weighted hits, weighted examples)."""

  def __init__(self, key: metric_types.MetricKey, model_name: str, output_name: str,
               example_weighted: bool):
    self._key = key
    self._model_name, self._output_name = model_name, output_name
    self._example_weighted = example_weighted

  def create_accumulator(self) -> Counts:
    return 0.0, 0.0

  def add_input(self, accumulator: Counts,
                element: metric_types.StandardMetricInputs) -> Counts:
    hits = top_one_hits(element.get_labels(self._model_name, self._output_name),
                        element.get_predictions(self._model_name, self._output_name))
    weights = np.ones_like(hits)
    if self._example_weighted:
      weights = weights * np.reshape(np.asarray(element.get_example_weights(
          self._model_name, self._output_name), dtype=np.float64), [-1])
    return (accumulator[0] + float(np.sum(weights * hits)),
            accumulator[1] + float(np.sum(weights)))

  def merge_accumulators(self, accumulators: Iterable[Counts]) -> Counts:
    hits, examples = 0.0, 0.0
    for accumulator in accumulators:
      hits, examples = hits + accumulator[0], examples + accumulator[1]
    return hits, examples

  def extract_output(self, accumulator: Counts) -> Dict[metric_types.MetricKey, float]:
    hits, examples = accumulator
    return {self._key: hits / examples if examples else float("nan")}


metric_types.register_metric(SparseCategoricalAccuracy)
