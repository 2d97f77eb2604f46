"""The parity gate: a TFLite model is exported only if it agrees with the SavedModel.

Both run on the same raw eval examples: the SavedModel through its
`serving_default` signature (what TF Serving returns), the TFLite model on
the features the SavedModel's own Transform layer makes of them. Every TFLite
output must be a serving output of the same name. A float32 conversion must
reproduce every numeric output to within FLOAT_MAX_ABS_DIFF (anything larger is a
conversion bug, not rounding) and string outputs (the item ids of a top-K
model) may differ in at most FLOAT_MAX_LABEL_MISMATCH of entries, where
float noise reorders near-tied scores. Quantisation changes outputs by design, so a
quantised model is held to the family's quality metric instead: within
QUANTIZED_MAX_QUALITY_DELTA (one point) of the SavedModel's.
"""
from typing import Any, Dict

import numpy as np

from modules.common.contract import FLOAT32, Arrays, FamilyAdapter

FLOAT_MAX_ABS_DIFF = 1e-4
QUANTIZED_MAX_QUALITY_DELTA = 0.01
FLOAT_MAX_LABEL_MISMATCH = 0.01


class ParityError(RuntimeError):
  """Raised when the TFLite model disagrees with the SavedModel."""


def _is_numeric(values: np.ndarray) -> bool:
  return np.issubdtype(values.dtype, np.number)


def measure(adapter: FamilyAdapter, mode: str, eval_batch: Arrays,
            served: Arrays, candidate: Arrays) -> Dict[str, Any]:
  """Parity figures of `candidate` (TFLite) against `served` (serving_default).

  `eval_batch` is the transformed eval batch (labels included) the adapter's
  quality metric reads.
  """
  if not set(candidate) <= set(served):
    raise ParityError(f"TFLite outputs {sorted(set(candidate) - set(served))} are not "
                      f"outputs of the serving signature ({sorted(served)})")
  reference = {name: served[name] for name in candidate}
  numeric = [name for name in reference if _is_numeric(reference[name])]
  labels = [name for name in reference if name not in numeric]
  max_abs_diff = max((float(np.max(np.abs(candidate[name].astype(np.float64)
                                           - reference[name].astype(np.float64))))
                      for name in numeric), default=0.0)
  # String outputs (item ids of a top-K model) are labels of numeric ones
  # (their scores): equal scores up to float noise may swap the labels of
  # near-ties, so they are held to a share, not to exact equality.
  label_mismatch_share = (
      sum(int(np.sum(candidate[name] != reference[name])) for name in labels)
      / sum(reference[name].size for name in labels)) if labels else None
  reference_quality = adapter.quality(eval_batch, reference)
  tflite_quality = adapter.quality(eval_batch, candidate)
  figures = {
      "examples": int(len(next(iter(reference.values())))),
      "max_abs_diff": max_abs_diff,
      "metric": adapter.quality_metric,
      "savedmodel_" + adapter.quality_metric: reference_quality,
      "tflite_" + adapter.quality_metric: tflite_quality,
      "quality_delta": tflite_quality - reference_quality,
  }
  if labels:
    figures["label_mismatch_share"] = label_mismatch_share
  if mode == FLOAT32:
    figures["criterion"] = f"max_abs_diff <= {FLOAT_MAX_ABS_DIFF}"
    figures["passed"] = max_abs_diff <= FLOAT_MAX_ABS_DIFF
    if labels:
      figures["criterion"] += f" and label_mismatch_share <= {FLOAT_MAX_LABEL_MISMATCH}"
      figures["passed"] &= label_mismatch_share <= FLOAT_MAX_LABEL_MISMATCH
  else:
    figures["criterion"] = f"|quality_delta| <= {QUANTIZED_MAX_QUALITY_DELTA}"
    figures["passed"] = abs(tflite_quality - reference_quality) <= QUANTIZED_MAX_QUALITY_DELTA
  return figures


def check(family: str, mode: str, figures: Dict[str, Any]) -> None:
  """Raises ParityError naming the family, mode and figures when parity failed."""
  if figures["passed"]:
    return
  metric = figures["metric"]
  raise ParityError(
      f"TFLite parity gate failed for family {family!r}, mode {mode!r}: "
      f"{figures['criterion']} does not hold on {figures['examples']} eval examples "
      f"(max abs diff {figures['max_abs_diff']:.3g}; {metric} "
      f"SavedModel {figures['savedmodel_' + metric]:.4f} vs TFLite "
      f"{figures['tflite_' + metric]:.4f}, delta {figures['quality_delta']:+.4f}); "
      "nothing was exported")
