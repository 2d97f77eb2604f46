"""TFMA metric recall@K over the two-tower scoring signature's `rank` output.

The scoring signature gives, per eval example, the 0-based rank of the true
item among the items the user has not seen in train (the catalogue size when
the item cannot be recommended). recall@K is then the share of eval examples
ranked below K. Every eval user holds out the same number of items
(movielens.time_split), so this per-example mean equals the per-user mean of
data/interactions/reference_recall.py, and the two are directly comparable.

Used from the EvalConfig as MetricConfig(class_name="RecallAtK",
module="modules.two_tower.metrics", config='{"k": 10}'), one config per K.
"""
from typing import Dict, Iterable, Optional, Tuple

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

from modules.two_tower import features


class RecallAtK(metric_types.Metric):
  """Share of eval examples whose true item is in the user's top K."""

  def __init__(self, k: int = 10, name: Optional[str] = None):
    if k < 1:
      raise ValueError(f"recall@K needs K >= 1, got {k}")
    super().__init__(metric_util.merge_per_key_computations(_recall_computations),
                     k=k, name=name or f"recall_at_{k}")


def _recall_computations(k: int, name: str, model_name: str = "", output_name: str = "",
                         example_weighted: bool = False, **_unused
                         ) -> metric_types.MetricComputations:
  key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                               example_weighted=example_weighted)
  return [metric_types.MetricComputation(
      keys=[key], preprocessors=None,
      combiner=_RecallCombiner(key, k, model_name, output_name))]


def ranks_of(predictions) -> np.ndarray:
  """The `rank` output as a flat array, whether or not TFMA already picked
  it out of the signature's outputs (ModelSpec.prediction_key)."""
  if isinstance(predictions, dict):
    predictions = predictions[features.RANK]
  return np.reshape(np.asarray(predictions, dtype=np.float64), [-1])


class _RecallCombiner(beam.CombineFn):
  """Accumulates (hits, examples)."""

  def __init__(self, key: metric_types.MetricKey, k: int, model_name: str, output_name: str):
    self._key, self._k = key, k
    self._model_name, self._output_name = model_name, output_name

  def create_accumulator(self) -> Tuple[int, int]:
    return 0, 0

  def add_input(self, accumulator: Tuple[int, int],
                element: metric_types.StandardMetricInputs) -> Tuple[int, int]:
    ranks = ranks_of(element.get_predictions(self._model_name, self._output_name))
    return accumulator[0] + int(np.sum(ranks < self._k)), accumulator[1] + ranks.size

  def merge_accumulators(self, accumulators: Iterable[Tuple[int, int]]) -> Tuple[int, int]:
    hits = examples = 0
    for accumulator_hits, accumulator_examples in accumulators:
      hits, examples = hits + accumulator_hits, examples + accumulator_examples
    return hits, examples

  def extract_output(self, accumulator: Tuple[int, int]
                     ) -> Dict[metric_types.MetricKey, float]:
    hits, examples = accumulator
    return {self._key: hits / examples if examples else float("nan")}


metric_types.register_metric(RecallAtK)
