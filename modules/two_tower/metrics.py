"""TFMA metrics over the two-tower scoring signature's rank outputs.

The scoring signature gives, per eval example, the 0-based rank of the true
item among the items the user has not seen in train (the catalogue size when
the item cannot be recommended), under the model (`rank`) and under the
most-popular ranking (`popular_rank`) computed in the same pass. recall@K is
the share of eval examples ranked below K. Every eval user holds out the same
number of items (movielens.time_split), so this per-example mean equals the
per-user mean of data/interactions/reference_recall.py, and the two are
directly comparable.

* RecallAtK: the model's recall@K.
* PopularRecallAtK: the most-popular ranking's recall@K on the same examples.
* RecallLiftAtK: their ratio, what the gate blesses on: it means the same on
  any data, where an absolute recall floor means something only on the data
  it was tuned on.

Used from the EvalConfig as MetricConfig(class_name="RecallAtK",
module="modules.two_tower.metrics", config='{"k": 10}'), one config per K.
"""
from typing import Dict, Iterable, Optional, Tuple

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

from modules.two_tower import features

# Accumulator: (model hits, most-popular hits, examples).
Counts = Tuple[int, int, int]


def _recall(counts: Counts) -> float:
  return counts[0] / counts[2] if counts[2] else float("nan")


def _popular_recall(counts: Counts) -> float:
  return counts[1] / counts[2] if counts[2] else float("nan")


def _lift(counts: Counts) -> float:
  # No popular hit at all: any model hit is an unbounded lift, none is none.
  if not counts[2]:
    return float("nan")
  if not counts[1]:
    return float("inf") if counts[0] else 0.0
  return counts[0] / counts[1]


class _RankMetric(metric_types.Metric):
  """A function of the (model, popular) hit counts in the top K."""
  prefix = ""
  value_of = staticmethod(_recall)

  def __init__(self, k: int = 10, name: Optional[str] = None):
    if k < 1:
      raise ValueError(f"recall@K needs K >= 1, got {k}")
    super().__init__(metric_util.merge_per_key_computations(self._computations),
                     k=k, name=name or f"{self.prefix}_at_{k}")

  def _computations(self, k: int, name: str, model_name: str = "", output_name: str = "",
                    example_weighted: bool = False, **_unused
                    ) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 example_weighted=example_weighted)
    return [metric_types.MetricComputation(
        keys=[key], preprocessors=None,
        combiner=_HitsCombiner(key, k, model_name, output_name, self.value_of))]


class RecallAtK(_RankMetric):
  """Share of eval examples whose true item is in the model's top K."""
  prefix = "recall"
  value_of = staticmethod(_recall)


class PopularRecallAtK(_RankMetric):
  """Share of eval examples whose true item is among the K most popular
  items the user has not seen."""
  prefix = "popular_recall"
  value_of = staticmethod(_popular_recall)


class RecallLiftAtK(_RankMetric):
  """The model's recall@K over the most-popular ranking's recall@K."""
  prefix = "recall_lift"
  value_of = staticmethod(_lift)


def ranks_of(predictions, key: str = features.RANK) -> np.ndarray:
  """One rank output as a flat array, whether or not TFMA already picked
  it out of the signature's outputs (ModelSpec.prediction_key)."""
  if isinstance(predictions, dict):
    predictions = predictions[key]
  return np.reshape(np.asarray(predictions, dtype=np.float64), [-1])


class _HitsCombiner(beam.CombineFn):
  """Accumulates (model hits, popular hits, examples)."""

  def __init__(self, key: metric_types.MetricKey, k: int, model_name: str, output_name: str,
               value_of):
    self._key, self._k, self._value_of = key, k, value_of
    self._model_name, self._output_name = model_name, output_name

  def create_accumulator(self) -> Counts:
    return 0, 0, 0

  def add_input(self, accumulator: Counts,
                element: metric_types.StandardMetricInputs) -> Counts:
    predictions = element.get_predictions(self._model_name, self._output_name)
    ranks = ranks_of(predictions)
    popular = (ranks_of(predictions, features.POPULAR_RANK) if isinstance(predictions, dict)
               else np.full_like(ranks, np.inf))
    return (accumulator[0] + int(np.sum(ranks < self._k)),
            accumulator[1] + int(np.sum(popular < self._k)),
            accumulator[2] + ranks.size)

  def merge_accumulators(self, accumulators: Iterable[Counts]) -> Counts:
    totals = (0, 0, 0)
    for counts in accumulators:
      totals = tuple(a + b for a, b in zip(totals, counts))
    return totals

  def extract_output(self, accumulator: Counts) -> Dict[metric_types.MetricKey, float]:
    return {self._key: self._value_of(accumulator)}


for _metric in (RecallAtK, PopularRecallAtK, RecallLiftAtK):
  metric_types.register_metric(_metric)
