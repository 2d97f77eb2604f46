"""What one Evaluator output says, read back from TFMA's own files.

The evaluation report (report.py), its terminal lines (terminal.py) and,
through those, the runner's summary and the review CLI all show an
evaluation; reading it here, once, keeps them from disagreeing. Everything
comes from `tfma.load_eval_result` and `tfma.load_validation_result`: metric values, TFMA's own
candidate-minus-baseline diffs, the thresholds of the EvalConfig the
Evaluator actually ran (TFX drops change thresholds when there is no
baseline) and which of them TFMA's validator failed. Nothing is recomputed:
the 95% confidence intervals too are TFMA's (its jackknife, see
pipeline/evaluation.py), for candidate, baseline and their difference alike.
"""
import dataclasses
import math
import re
from typing import Dict, List, Optional, Tuple

from google.protobuf import json_format
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.slicer import slicer_lib

from components.eval_report.names import BASELINE, CANDIDATE, EXAMPLE_COUNT, OVERALL

_DIFF_SUFFIX = "_diff"
_TOP_K = re.compile(r"topK:(\d+)")


Interval = Tuple[float, float]


@dataclasses.dataclass(frozen=True)
class MetricComparison:
  """One scalar metric on one slice; None where TFMA recorded no (finite) value.

  The `*_ci95` fields are TFMA's 95% confidence intervals (lower, upper) of
  the value beside them; None where TFMA computed none (the Evaluator ran
  without confidence intervals, or the metric is one TFMA skips, such as
  example_count).
  """
  name: str
  candidate: Optional[float]
  baseline: Optional[float]
  diff: Optional[float]  # TFMA's candidate - baseline (its `<name>_diff` metric)
  candidate_ci95: Optional[Interval] = None
  baseline_ci95: Optional[Interval] = None
  diff_ci95: Optional[Interval] = None


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
  passed: Optional[bool]   # None: TFMA recorded no value to check, or not applied
  higher_is_better: bool
  limit: Optional[float] = None  # the bound's number (lower or upper, absolute change)
  applied: bool = True     # False: configured, but TFX ran without it (no baseline yet)


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


def _finite(number) -> Optional[float]:
  if number is None:
    return None
  number = float(number)  # JSON gives NaN and infinities as strings.
  return number if math.isfinite(number) else None


def _scalar(value) -> Tuple[Optional[float], Optional[Interval]]:
  """(a metric's number, its confidence interval), None for what is missing,
  non-scalar or non-finite (e.g. NaN)."""
  if not isinstance(value, dict):
    return None, None
  if "boundedValue" not in value:
    return _finite(value.get("doubleValue")), None
  bounded = value["boundedValue"]
  lower, upper = _finite(bounded.get("lowerBound")), _finite(bounded.get("upperBound"))
  interval = (lower, upper) if lower is not None and upper is not None else None
  return _finite(bounded.get("value")), interval


def _flatten(metrics_by_output) -> Tuple[Dict[str, Tuple[float, Optional[Interval]]],
                                         Dict[str, Tuple[float, Optional[Interval]]]]:
  """(values, diffs) by flat metric name, each (number, interval), from one
  slice of a loaded EvalResult."""
  values, diffs = {}, {}
  for output_name, by_sub_key in (metrics_by_output or {}).items():
    for sub_key, by_name in by_sub_key.items():
      for name, value in by_name.items():
        number, interval = _scalar(value)
        if number is None:
          continue
        if name.endswith(_DIFF_SUFFIX):
          diffs[metric_label(name[:-len(_DIFF_SUFFIX)], output_name, sub_key)] = (number, interval)
        else:
          values[metric_label(name, output_name, sub_key)] = (number, interval)
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


def _describe(threshold) -> Tuple[str, str, bool, Optional[float]]:
  """(kind, bound, higher_is_better, limit) of a GenericValue/ChangeThreshold."""
  if isinstance(threshold, tfma.GenericValueThreshold):
    bounds, limit = [], None
    if threshold.HasField("upper_bound"):
      bounds.append(f"<= {threshold.upper_bound.value:g}")
      limit = threshold.upper_bound.value
    if threshold.HasField("lower_bound"):
      bounds.insert(0, f">= {threshold.lower_bound.value:g}")
      limit = threshold.lower_bound.value
    return "value", " and ".join(bounds), threshold.HasField("lower_bound"), limit
  higher = threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
  op = ">=" if higher else "<="
  bounds, limit = [], None
  if threshold.HasField("absolute"):
    bounds.append(f"change {op} {threshold.absolute.value:g}")
    limit = threshold.absolute.value
  if threshold.HasField("relative"):
    bounds.append(f"relative change {op} {threshold.relative.value:g}")
  return "change", " and ".join(bounds), higher, limit


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
      _, bound, _, _ = _describe(threshold.change_threshold if key.is_diff
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
      kind, bound, higher, limit = _describe(threshold)
      for slice_result in slices:
        if spec is not None and not spec.is_slice_applicable(slice_result.key):
          continue
        comparison = slice_result.metric(_key_label(key))
        value = None
        if comparison is not None:
          value = comparison.diff if key.is_diff else comparison.candidate
        passed = None if value is None else (slice_result.key, _identity(key)) not in failed
        checks.append(ThresholdCheck(_key_label(key), slice_result.name, kind, bound,
                                     value, passed, higher, limit))
  return tuple(checks)


def _not_applied(configured: tfma.EvalConfig,
                 slices: Tuple[SliceResult, ...]) -> Tuple[ThresholdCheck, ...]:
  """The change thresholds of the configured EvalConfig, which TFX leaves out
  of the one it runs when there is no baseline yet."""
  checks = []
  thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(configured.metrics_specs)
  for key, entries in thresholds.items():
    for slice_spec, threshold in entries:
      if not key.is_diff or isinstance(slice_spec, tfma.CrossSlicingSpec):
        continue
      spec = tfma.slicer.SingleSliceSpec(spec=slice_spec) if slice_spec else None
      kind, bound, higher, limit = _describe(threshold)
      for slice_result in slices:
        if spec is None or spec.is_slice_applicable(slice_result.key):
          checks.append(ThresholdCheck(_key_label(key), slice_result.name, kind, bound,
                                       None, None, higher, limit, applied=False))
  return tuple(checks)


def load_evaluation(uri: str, configured_eval_config: Optional[str] = None) -> Evaluation:
  """Reads the Evaluator's `evaluation` artifact at `uri`.

  `configured_eval_config` (the EvalConfig the pipeline gave the Evaluator,
  as JSON): its change thresholds are listed as not applied when the
  evaluation had no baseline.
  """
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
    none = (None, None)
    comparisons = tuple(
        MetricComparison(name, values.get(name, none)[0], base_values.get(name, none)[0],
                         diffs.get(name, none)[0], values.get(name, none)[1],
                         base_values.get(name, none)[1], diffs.get(name, none)[1])
        for name in sorted(set(values) | set(base_values)))
    slices.append(SliceResult(slice_key, tfma.slicer.stringify_slice_key(slice_key),
                              comparisons))
  slices.sort(key=lambda s: s.key != ())  # Overall first, TFMA's order otherwise.
  if not slices or slices[0].key != ():
    raise ValueError(f"{uri}: the evaluation has no overall slice")

  validation = tfma.load_validation_result(uri)
  failed, failure_lines = _failures(validation)
  checks = _threshold_checks(config, baseline_names[0] if baseline_names else None,
                             tuple(slices), failed)
  if configured_eval_config and not baseline_names:
    configured = json_format.Parse(configured_eval_config, tfma.EvalConfig())
    checks += _not_applied(configured, tuple(slices))
  return Evaluation(
      uri=uri,
      candidate_location=candidate.model_location,
      baseline_location=baseline.model_location if baseline else None,
      slices=tuple(slices),
      thresholds=checks,
      validation_ok=validation.validation_ok,
      failures=tuple(failure_lines),
      plots={role: _plots(result) for role, result in
             ((CANDIDATE, candidate), (BASELINE, baseline)) if result is not None})
