"""Resolver strategy: the latest blessed model that is NOT the current candidate.

TFX's LatestBlessedModelStrategy returns the newest blessed model, which on a
re-run without changes is the (cached) candidate itself: the Evaluator then
sees a new baseline input, re-evaluates the model against itself and Pusher
pushes the same model again. Excluding the candidate keeps a no-change re-run
fully cached and never compares a model with itself.

Used by the local runner; Kubeflow's v2 compiler accepts only TFX's own
strategies (see kubeflow_runner.py).
"""
from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common import resolver

MODEL_KEY = "model"
BLESSING_KEY = "model_blessing"
CANDIDATE_KEY = "candidate"
_CURRENT_MODEL_ID = "current_model_id"
_BLESSED = "blessed"


def pick_baseline(models: List[types.Artifact], blessings: List[types.Artifact],
                  candidates: List[types.Artifact]) -> Dict[str, List[types.Artifact]]:
  """The newest blessed model other than any candidate, with its blessing."""
  excluded = {c.id for c in candidates}
  blessing_by_model = {
      b.get_int_custom_property(_CURRENT_MODEL_ID): b
      for b in blessings if b.get_int_custom_property(_BLESSED) == 1}
  for model in sorted(models, key=lambda a: a.id, reverse=True):
    if model.id not in excluded and model.id in blessing_by_model:
      return {MODEL_KEY: [model], BLESSING_KEY: [blessing_by_model[model.id]]}
  return {MODEL_KEY: [], BLESSING_KEY: []}


class LatestBlessedBaselineStrategy(resolver.ResolverStrategy):
  """Inputs: `model`, `model_blessing` (all of each) and `candidate`."""

  def resolve_artifacts(
      self, store, input_dict: Dict[str, List[types.Artifact]]
  ) -> Optional[Dict[str, List[types.Artifact]]]:
    result = pick_baseline(input_dict.get(MODEL_KEY, []),
                           input_dict.get(BLESSING_KEY, []),
                           input_dict.get(CANDIDATE_KEY, []))
    result[CANDIDATE_KEY] = list(input_dict.get(CANDIDATE_KEY, []))
    return result
