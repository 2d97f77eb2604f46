"""What one Evaluator output says, read back from TFMA's own files.

The evaluation report (report.py), its terminal lines (terminal.py) and,
through those, the runner's summary and the review CLI all show an
evaluation; reading it here, once, keeps them from disagreeing. Everything
comes from `tfma.load_eval_result` and `tfma.load_validation_result`: metric values, TFMA's own
candidate-minus-baseline diffs, the thresholds of the EvalConfig the
Evaluator actually ran (TFX drops change thresholds when there is no
baseline) and which of them TFMA's validator failed. Nothing is recomputed.
"""
import dataclasses
import math
import re
from typing import Dict, List, Optional, Tuple

import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.slicer import slicer_lib

OVERALL = "Overall"
EXAMPLE_COUNT = "example_count"
CANDIDATE = "candidate"
BASELINE = "baseline"
_DIFF_SUFFIX = "_diff"
_TOP_K = re.compile(r"topK:(\d+)")


@dataclasses.dataclass(frozen=True)
class MetricComparison:
  """One scalar metric on one slice; None where TFMA recorded no (finite) value."""
  name: str
  candidate: Optional[float]
  baseline: Optional[float]
  diff: Optional[float]  # TFMA's candidate - baseline (its `<name>_diff` metric)


@dataclasses.dataclass(frozen=True)
class SliceResult:
  """The metrics of one slice; `key` is TFMA's slice key, () for the overall one."""
  key: Tuple[Tuple[str, object], ...]
  name: str
  metrics: Tuple[MetricComparison, ...]

  def metric(self, name: str) -> Optional[MetricComparison]:
    return next((m for m in self.metrics if m.name == name), None)

  @property
  def example_count(self) -> Optional[float]:
    count = self.metric(EXAMPLE_COUNT)
    return count.candidate if count else None


@dataclasses.dataclass(frozen=True)
class ThresholdCheck:
  """One threshold of the EvalConfig on one slice, with TFMA's verdict."""
  metric: str
  slice: str
  kind: str                # "value" (absolute) or "change" (against the baseline)
  bound: str               # e.g. ">= 0.95" or "change >= -0.01"
  value: Optional[float]   # the metric for "value", TFMA's diff for "change"
  passed: Optional[bool]   # None: TFMA recorded no value to check
  higher_is_better: bool


@dataclasses.dataclass(frozen=True)
class Plot:
  """One TFMA plot of the overall slice, as `tfma.load_eval_result` gives it.

  `kind` is the PlotData field (e.g. `multiClassConfusionMatrixAtThresholds`,
  `confusionMatrixAtThresholds`, `calibrationHistogramBuckets`); `qualifier`
  names the output / sub key of multi-output or per-class plots ("" if none).
  """
  kind: str
  qualifier: str
  data: dict


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """An Evaluator output: candidate (and baseline) metrics, thresholds, plots."""
  uri: str
  candidate_location: str
  baseline_location: Optional[str]
  slices: Tuple[SliceResult, ...]          # the overall slice first
  thresholds: Tuple[ThresholdCheck, ...]
  validation_ok: bool
  failures: Tuple[str, ...]                # TFMA's failed (or missing) thresholds
  plots: Dict[str, Tuple[Plot, ...]]       # CANDIDATE / BASELINE -> overall-slice plots

  @property
  def overall(self) -> SliceResult:
    return self.slices[0]

  @property
  def has_baseline(self) -> bool:
    return self.baseline_location is not None

  @property
  def validation_reason(self) -> str:
    """Why TFMA's validation passed or failed, in one line."""
    if self.validation_ok:
      return "every threshold passed"
    return "; ".join(self.failures) or "validation failed"


def metric_label(name: str, output_name: str = "", sub_key: str = "") -> str:
  """A flat metric name: top-k sub keys read as `name@k` (a metric already
  named `recall@5` stays so), other sub keys in brackets."""
  top_k = _TOP_K.fullmatch(sub_key)
  if top_k:
    suffix = f"@{top_k.group(1)}"
    label = name if name.endswith(suffix) else name + suffix
  else:
    label = f"{name}[{sub_key}]" if sub_key else name
  return f"{output_name}/{label}" if output_name else label


def _scalar(value) -> Optional[float]:
  """A metric's number, or None for non-scalar or non-finite (e.g. NaN) values."""
  if not isinstance(value, dict):
    return None
  number = (value["boundedValue"].get("value") if "boundedValue" in value  # with a CI
            else value.get("doubleValue"))
  if number is None:
    return None
  number = float(number)  # JSON gives NaN and infinities as strings.
  return number if math.isfinite(number) else None


def _flatten(metrics_by_output) -> Tuple[Dict[str, float], Dict[str, float]]:
  """(values, diffs) by flat metric name from one slice of a loaded EvalResult."""
  values, diffs = {}, {}
  for output_name, by_sub_key in (metrics_by_output or {}).items():
    for sub_key, by_name in by_sub_key.items():
      for name, value in by_name.items():
        number = _scalar(value)
        if number is None:
          continue
        if name.endswith(_DIFF_SUFFIX):
          diffs[metric_label(name[:-len(_DIFF_SUFFIX)], output_name, sub_key)] = number
        else:
          values[metric_label(name, output_name, sub_key)] = number
  return values, diffs


def _plots(eval_result) -> Tuple[Plot, ...]:
  for slice_key, by_output in eval_result.plots or ():
    if slice_key != ():
      continue
    plots = []
    for output_name, by_sub_key in (by_output or {}).items():
      for sub_key, by_kind in by_sub_key.items():
        for kind, data in by_kind.items():
          if isinstance(data, dict) and kind != "debugMessage":
            plots.append(Plot(kind, " ".join(p for p in (output_name, sub_key) if p), data))
    return tuple(plots)
  return ()


def _describe(threshold) -> Tuple[str, str, bool]:
  """(kind, bound, higher_is_better) of a GenericValue/ChangeThreshold."""
  if isinstance(threshold, tfma.GenericValueThreshold):
    bounds = []
    if threshold.HasField("lower_bound"):
      bounds.append(f">= {threshold.lower_bound.value:g}")
    if threshold.HasField("upper_bound"):
      bounds.append(f"<= {threshold.upper_bound.value:g}")
    return "value", " and ".join(bounds), threshold.HasField("lower_bound")
  higher = threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
  op = ">=" if higher else "<="
  bounds = []
  if threshold.HasField("absolute"):
    bounds.append(f"change {op} {threshold.absolute.value:g}")
  if threshold.HasField("relative"):
    bounds.append(f"relative change {op} {threshold.relative.value:g}")
  return "change", " and ".join(bounds), higher


def _identity(key: tfma.metrics.MetricKey):
  """What identifies a metric key across the config and the validation result."""
  return (key.name, key.model_name, key.output_name, key.sub_key, key.is_diff)


def _key_label(key: tfma.metrics.MetricKey) -> str:
  return metric_label(key.name, key.output_name, str(key.sub_key) if key.sub_key else "")


def _failures(validation) -> Tuple[set, List[str]]:
  """(set of failed (slice key, metric identity), one line per failure)."""
  failed, lines = set(), []
  for per_slice in validation.metric_validations_per_slice:
    cross = per_slice.HasField("cross_slice_key")
    slice_key = (None if cross else tfma.slicer.deserialize_slice_key(per_slice.slice_key))
    slice_name = "cross slice" if cross else tfma.slicer.stringify_slice_key(slice_key)
    for failure in per_slice.failures:
      key = tfma.metrics.MetricKey.from_proto(failure.metric_key)
      failed.add((slice_key, _identity(key)))
      threshold = failure.metric_threshold
      _, bound, _ = _describe(threshold.change_threshold if key.is_diff
                              else threshold.value_threshold)
      lines.append(f"{_key_label(key)}{' (change vs baseline)' if key.is_diff else ''} "
                   f"on {slice_name} = {failure.metric_value.double_value.value:.4f} "
                   f"fails {bound}")
  if validation.missing_slices:
    lines.append("no data for slices: " + ", ".join(
        str(spec).replace("\n", " ").strip() or OVERALL for spec in validation.missing_slices))
  if validation.missing_thresholds:  # TFMA sets it when the config has no threshold.
    lines.append("no thresholds configured, so TFMA validated nothing")
  return failed, lines


def _threshold_checks(config, baseline_name: Optional[str], slices: Tuple[SliceResult, ...],
                      failed: set) -> Tuple[ThresholdCheck, ...]:
  """Every single-slice threshold of `config` on every slice it applies to.

  Cross-slice thresholds have no slice of their own here; their failures are
  still listed in `Evaluation.failures`.
  """
  checks = []
  thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(
      config.metrics_specs, eval_config=config)
  for key, entries in thresholds.items():
    if baseline_name is not None and key.model_name == baseline_name:
      continue  # TFMA never checks the baseline's own thresholds.
    for slice_spec, threshold in entries:
      if isinstance(slice_spec, tfma.CrossSlicingSpec):
        continue
      spec = tfma.slicer.SingleSliceSpec(spec=slice_spec) if slice_spec else None
      kind, bound, higher = _describe(threshold)
      for slice_result in slices:
        if spec is not None and not spec.is_slice_applicable(slice_result.key):
          continue
        comparison = slice_result.metric(_key_label(key))
        value = None
        if comparison is not None:
          value = comparison.diff if key.is_diff else comparison.candidate
        passed = None if value is None else (slice_result.key, _identity(key)) not in failed
        checks.append(ThresholdCheck(_key_label(key), slice_result.name, kind, bound,
                                     value, passed, higher))
  return tuple(checks)


def load_evaluation(uri: str) -> Evaluation:
  """Reads the Evaluator's `evaluation` artifact at `uri`."""
  config, _, _, _ = tfma.writers.eval_config_writer.load_eval_run(uri)
  candidate_names = [s.name for s in config.model_specs if not s.is_baseline]
  baseline_names = [s.name for s in config.model_specs if s.is_baseline]
  candidate = tfma.load_eval_result(uri, model_name=candidate_names[0])
  baseline = (tfma.load_eval_result(uri, model_name=baseline_names[0])
              if baseline_names else None)
  baseline_by_slice = dict(baseline.slicing_metrics) if baseline else {}

  slices = []
  for slice_key, metrics in candidate.slicing_metrics:
    if slicer_lib.is_cross_slice_key(slice_key):
      continue
    values, diffs = _flatten(metrics)
    base_values, _ = _flatten(baseline_by_slice.get(slice_key))
    comparisons = tuple(
        MetricComparison(name, values.get(name), base_values.get(name), diffs.get(name))
        for name in sorted(set(values) | set(base_values)))
    slices.append(SliceResult(slice_key, tfma.slicer.stringify_slice_key(slice_key),
                              comparisons))
  slices.sort(key=lambda s: s.key != ())  # Overall first, TFMA's order otherwise.
  if not slices or slices[0].key != ():
    raise ValueError(f"{uri}: the evaluation has no overall slice")

  validation = tfma.load_validation_result(uri)
  failed, failure_lines = _failures(validation)
  return Evaluation(
      uri=uri,
      candidate_location=candidate.model_location,
      baseline_location=baseline.model_location if baseline else None,
      slices=tuple(slices),
      thresholds=_threshold_checks(config, baseline_names[0] if baseline_names else None,
                                   tuple(slices), failed),
      validation_ok=validation.validation_ok,
      failures=tuple(failure_lines),
      plots={role: _plots(result) for role, result in
             ((CANDIDATE, candidate), (BASELINE, baseline)) if result is not None})
