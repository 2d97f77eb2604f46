"""The report's figures, chosen from what TFMA recorded, as PNG data: URIs.

A report must open offline, anywhere, long after the run: figures are
rasterised and embedded as base64 PNGs rather than linked or scripted. Which
figures appear depends only on the evaluation, so every family gets the ones
its EvalConfig produced:
  - TFMA's MultiClassConfusionMatrixPlot -> confusion matrix (e.g. CNN),
  - TFMA's ConfusionMatrixPlot -> ROC curve, CalibrationPlot -> calibration
    curve (e.g. LSTM), candidate and baseline overlaid,
  - metrics named `<name>@<K>` or `<name>_at_<K>` (or TFMA top-k sub keys)
    for several K -> a metric@K curve (e.g. the two-tower's recall_at_<K>),
    with `popular_<name>` at the same K (the most-popular ranking's, e.g.
    the two-tower's popular_recall_at_<K>) drawn beside it as the anchor,
  - sliced metrics -> the primary metric by slice, one chart per feature:
    candidate (and baseline) with TFMA's 95% intervals as whiskers, the
    axis zoomed to the data so 0.981 and 1.000 look different, and the
    gate's bound drawn as a line.
Every value drawn is TFMA's; calibration buckets are only merged (summed) into
fewer, wider ones so they stay readable. The evaluation's types are only
annotations here: the review CLI draws a history page with this module's
helpers and must not load TFMA for it.
"""
from __future__ import annotations

import base64
import io
import re
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from matplotlib.figure import Figure

from components.eval_report.names import BASELINE, CANDIDATE

if TYPE_CHECKING:
  from components.eval_report.results import Evaluation, Plot

CONFUSION_MATRIX = "multiClassConfusionMatrixAtThresholds"
BINARY_CONFUSION = "confusionMatrixAtThresholds"
CALIBRATION = "calibrationHistogramBuckets"
CALIBRATION_BINS = 20
_AT_K = re.compile(r"(?P<name>.+?)(?:@|_at_)(?P<k>\d+)")
# A metric@K of the most-popular ranking is named this prefix + the model's
# metric name; its curve is drawn in the model's metric@K figure, as this role.
POPULAR_PREFIX = "popular_"
MOST_POPULAR = "most popular"
_COLORS = {CANDIDATE: "#1f77b4", BASELINE: "#ff7f0e", MOST_POPULAR: "#7f7f7f"}


def data_uri(figure: Figure) -> str:
  buffer = io.BytesIO()
  # No "Software" text chunk: the file names no program and no URL.
  figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight",
                 metadata={"Software": None})
  return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _title(base: str, plot: Plot) -> str:
  return f"{base} ({plot.qualifier})" if plot.qualifier else base


def _by_kind(evaluation: Evaluation, kind: str) -> List[Tuple[Plot, Optional[Plot]]]:
  """(candidate plot, baseline plot of the same output/sub key or None)."""
  baseline = {p.qualifier: p for p in evaluation.plots.get(BASELINE, ()) if p.kind == kind}
  return [(p, baseline.get(p.qualifier))
          for p in evaluation.plots.get(CANDIDATE, ()) if p.kind == kind]


def confusion_matrix(plot: Plot) -> str:
  """Counts of actual vs predicted class at TFMA's first (argmax) threshold."""
  entries = plot.data["matrices"][0].get("entries", [])
  # JSON leaves out zero fields: a missing class id is class 0.
  cells = {(e.get("actualClassId", 0), e.get("predictedClassId", 0)):
           e.get("numWeightedExamples", 0.0) for e in entries}
  classes = sorted({c for pair in cells for c in pair})
  index = {c: i for i, c in enumerate(classes)}
  grid = [[0.0] * len(classes) for _ in classes]
  for (actual, predicted), count in cells.items():
    grid[index[actual]][index[predicted]] = count
  size = max(4.0, 0.5 * len(classes) + 2)
  figure = Figure(figsize=(size + 1, size))
  axes = figure.subplots()
  image = axes.imshow(grid, cmap="Blues")
  figure.colorbar(image, ax=axes, label="examples")
  labels = ["none" if c == -1 else str(c) for c in classes]  # -1: below threshold
  axes.set_xticks(range(len(classes)), labels)
  axes.set_yticks(range(len(classes)), labels)
  axes.set_xlabel("predicted class")
  axes.set_ylabel("actual class")
  peak = max(max(row) for row in grid) or 1.0
  for i, row in enumerate(grid):
    for j, count in enumerate(row):
      if count:
        axes.text(j, i, f"{count:g}", ha="center", va="center", fontsize=8,
                  color="white" if count > peak / 2 else "black")
  axes.set_title(_title("Confusion matrix, candidate, overall slice", plot))
  return data_uri(figure)


def roc_curve(candidate: Plot, baseline: Optional[Plot]) -> str:
  """TFMA's false positive rate and recall at each of its thresholds."""
  figure = Figure(figsize=(6, 5))
  axes = figure.subplots()
  for role, plot in ((CANDIDATE, candidate), (BASELINE, baseline)):
    if plot is None:
      continue
    points = sorted((m.get("falsePositiveRate", 0.0), m.get("recall", 0.0))
                    for m in plot.data.get("matrices", []))
    axes.plot([p[0] for p in points], [p[1] for p in points], color=_COLORS[role], label=role)
  axes.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="chance")
  axes.set_xlabel("false positive rate")
  axes.set_ylabel("true positive rate (recall)")
  axes.set_xlim(0, 1)
  axes.set_ylim(0, 1.02)
  axes.legend(loc="lower right")
  axes.set_title(_title("ROC curve, overall slice", candidate))
  return data_uri(figure)


def _calibration_points(plot: Plot) -> Tuple[List[float], List[float], List[float]]:
  """(mean prediction, mean label, examples) of TFMA's buckets merged into bins."""
  bins: Dict[int, List[float]] = {}
  for bucket in plot.data.get("buckets", []):
    count = float(bucket.get("numWeightedExamples", 0.0))
    if count <= 0:
      continue
    # JSON omits a 0.0 bound and writes the first one as "-Infinity".
    lower = min(1.0, max(0.0, float(bucket.get("lowerThresholdInclusive", 0.0))))
    position = min(CALIBRATION_BINS - 1, int(lower * CALIBRATION_BINS))
    totals = bins.setdefault(position, [0.0, 0.0, 0.0])
    totals[0] += float(bucket.get("totalWeightedRefinedPrediction", 0.0))
    totals[1] += float(bucket.get("totalWeightedLabel", 0.0))
    totals[2] += count
  merged = [bins[b] for b in sorted(bins)]
  return ([p / n for p, _, n in merged], [l / n for _, l, n in merged],
          [n for _, _, n in merged])


def calibration_curve(candidate: Plot, baseline: Optional[Plot]) -> str:
  """Mean label against mean prediction; marker area grows with the examples."""
  figure = Figure(figsize=(6, 5))
  axes = figure.subplots()
  for role, plot in ((CANDIDATE, candidate), (BASELINE, baseline)):
    if plot is None:
      continue
    predicted, observed, counts = _calibration_points(plot)
    peak = max(counts, default=1.0)
    axes.plot(predicted, observed, color=_COLORS[role], label=role)
    axes.scatter(predicted, observed, s=[20 + 180 * n / peak for n in counts],
                 color=_COLORS[role], alpha=0.6)
  axes.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1,
            label="perfectly calibrated")
  axes.set_xlabel("mean prediction")
  axes.set_ylabel("fraction of positive labels")
  axes.legend(loc="upper left")
  axes.set_title(_title("Calibration, overall slice", candidate))
  return data_uri(figure)


def at_k_curves(evaluation: Evaluation) -> Dict[str, Dict[str, List[Tuple[int, float]]]]:
  """{metric name: {role: [(K, value), ...]}} for names measured at 2+ K
  (roles: the candidate, the baseline, and the most-popular ranking where
  it was measured)."""
  curves: Dict[str, Dict[str, List[Tuple[int, float]]]] = {}
  for metric in evaluation.overall.metrics:
    match = _AT_K.fullmatch(metric.name)
    if not match:
      continue
    for role, value in ((CANDIDATE, metric.candidate), (BASELINE, metric.baseline)):
      if value is not None:
        curves.setdefault(match["name"], {}).setdefault(role, []).append(
            (int(match["k"]), value))
  for name in [name for name in curves if name.startswith(POPULAR_PREFIX)]:
    anchored = curves.get(name[len(POPULAR_PREFIX):])
    if anchored is not None and CANDIDATE in curves[name]:
      # The ranking does not depend on the model: the candidate run's values.
      anchored[MOST_POPULAR] = curves.pop(name)[CANDIDATE]
  return {name: {role: sorted(points) for role, points in by_role.items()}
          for name, by_role in curves.items()
          if len(by_role.get(CANDIDATE, [])) >= 2}


def at_k_curve(name: str, by_role: Dict[str, List[Tuple[int, float]]]) -> str:
  figure = Figure(figsize=(6, 4))
  axes = figure.subplots()
  for role, points in by_role.items():
    axes.plot([k for k, _ in points], [v for _, v in points], marker="o",
              color=_COLORS[role], label=role,
              linestyle="--" if role == MOST_POPULAR else "-")
  axes.set_xlabel("K")
  axes.set_ylabel(f"{name}@K")
  axes.set_ylim(0, 1.02 if all(v <= 1 for p in by_role.values() for _, v in p) else None)
  axes.legend(loc="lower right")
  axes.set_title(f"{name}@K, overall slice")
  return data_uri(figure)


def zoomed_limits(values: Sequence[float]) -> Tuple[float, float]:
  """An axis range around `values` with a margin, at least 0.01 wide."""
  low, high = min(values), max(values)
  margin = max(0.1 * (high - low), 0.005)
  return low - margin, high + margin


def metric_by_slice(feature: str, rows: Sequence[dict], metric: str,
                    small_slice_examples: int, gate: Optional[dict] = None) -> str:
  """`metric` per slice value as points with their 95% interval, the axis
  zoomed to the data; slices under the example floor hollow; the gate's
  bound (on the overall slice) as a dashed line."""
  figure = Figure(figsize=(max(6.0, 0.6 * len(rows) + 2), 4))
  axes = figure.subplots()
  has_baseline = any(r["baseline"] is not None for r in rows)
  offset = 0.15 if has_baseline else 0.0
  numbers: List[float] = []  # everything drawn, for the zoomed axis
  for role, shift in ((CANDIDATE, -offset), (BASELINE, offset)):
    points = [(position, row) for position, row in enumerate(rows) if row[role] is not None]
    for index, (position, row) in enumerate(points):
      value, interval = row[role], row.get(f"{role}_ci95")
      errors = [[value - interval[0]], [interval[1] - value]] if interval else None
      axes.errorbar([position + shift], [value], yerr=errors, fmt="o", markersize=9,
                    color=_COLORS[role], capsize=5, elinewidth=2,
                    markerfacecolor="white" if row["small"] else _COLORS[role],
                    label=role if index == 0 else None)
      numbers += [value] + (list(interval) if interval else [])
  low, high = zoomed_limits(numbers) if numbers else (0.0, 1.0)
  if gate is not None:
    # A gate near the data is drawn inside the zoomed axis; a far one would
    # flatten the data again, so it is drawn at the edge it lies beyond.
    limit = gate["limit"]
    if limit < low and low - limit <= high - low:
      low = limit - 0.05 * (high - low)
    elif limit > high and limit - high <= high - low:
      high = limit + 0.05 * (high - low)
    where = "below the axis" if limit < low else "above the axis" if limit > high else ""
    drawn = min(max(limit, low), high)
    axes.axhline(drawn, color="#d62728", linestyle="--", linewidth=1.5,
                 label=f"gate {gate['bound']} (overall)" + (f", {where}" if where else ""))
  axes.set_ylim(low, high)
  axes.set_xlim(-0.6, len(rows) - 0.4)
  axes.grid(axis="y", color="#dddddd")
  axes.set_xticks(list(range(len(rows))), [f"{r['value']}\nn={r['examples']:g}"
                                           if r["examples"] is not None else str(r["value"])
                                           for r in rows], fontsize=8)
  axes.set_xlabel(f"{feature} (hollow: fewer than {small_slice_examples} examples; "
                  "whiskers: 95% interval)")
  axes.set_ylabel(metric)
  axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the points, not on them
  axes.set_title(f"{metric} by {feature}")
  return data_uri(figure)


def render(evaluation: Evaluation, slices_by_feature: Dict[str, List[dict]],
           primary_metric: Optional[str], small_slice_examples: int,
           gate: Optional[dict] = None) -> List[Tuple[str, str]]:
  """[(title, data URI)] of every figure this evaluation has data for.

  `slices_by_feature` holds the report's per-slice rows ({"value",
  "examples", "small", "candidate", "baseline", "candidate_ci95",
  "baseline_ci95"} of the primary metric); `gate`: {"bound", "limit"} of
  the value threshold on the primary metric, None when it has none.
  """
  figures = []
  for plot, _ in _by_kind(evaluation, CONFUSION_MATRIX):
    figures.append((_title("Confusion matrix", plot), confusion_matrix(plot)))
  for plot, baseline in _by_kind(evaluation, BINARY_CONFUSION):
    figures.append((_title("ROC curve", plot), roc_curve(plot, baseline)))
  for plot, baseline in _by_kind(evaluation, CALIBRATION):
    figures.append((_title("Calibration", plot), calibration_curve(plot, baseline)))
  for name, by_role in sorted(at_k_curves(evaluation).items()):
    figures.append((f"{name}@K", at_k_curve(name, by_role)))
  if primary_metric:
    for feature, rows in slices_by_feature.items():
      figures.append((f"{primary_metric} by {feature}",
                      metric_by_slice(feature, rows, primary_metric, small_slice_examples,
                                      gate)))
  return figures
