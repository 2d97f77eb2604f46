"""Benchmarks: pipeline wall time, caching, Trainer overhead, serving latency,
Beam runner modes and the two-tower pipeline at scale.

    .venv/bin/python bench/run_bench.py [--families cnn lstm two_tower]
        [--repeats 3] [--scale-interactions 1000000] [--skip scale beam]
    .venv/bin/python bench/run_bench.py --families --scale-interactions 1000000  # scale run only

Writes bench/results/<family>.json (and scale.json) and the table in
BENCHMARKS.md. Every figure is measured here, on this machine; medians over
--repeats where a measurement is cheap (latencies, re-runs).
"""
import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
from tfx.orchestration import metadata as tfx_metadata  # noqa: E402

from pipeline import configs  # noqa: E402
from runners import beam_presets, run_summary  # noqa: E402
from runners.layout import OutputLayout  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "results")
NOTES = os.path.join(REPO, "bench", "notes.md")
# Components that run as Beam pipelines (the ones a Beam runner can scale out).
_BEAM_COMPONENTS = ("MovieLensExampleGen", "TFRecordExampleGen", "StatisticsGen", "Transform",
                    "Evaluator")
# The runner's default preset (runners/beam_presets.py): in-process DirectRunner.
DIRECT = ["--beam-preset", beam_presets.DIRECT]
# Appended after the preset's flags, these win (Beam keeps a flag's last value).
MULTI = [*DIRECT, "--beam-arg=--direct_running_mode=multi_processing",
         "--beam-arg=--direct_num_workers=2"]


# Runs a command and reports the peak RSS of that command alone (its own
# RUSAGE_CHILDREN), which the benchmark process's counter cannot: that one
# is the maximum over every child the benchmark has started, and a child
# forked from a benchmark holding TensorFlow counts its memory until exec.
# Also its CPU seconds (user + system), the figure that other load on the
# machine stretches least, and its wall seconds from start to exit.
_PEAK_RSS = ("import resource, subprocess, sys, time\n"
             "started = time.perf_counter()\n"
             "code = subprocess.run(sys.argv[1:]).returncode\n"
             "wall = time.perf_counter() - started\n"
             "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "print('PEAK_RSS_KB', usage.ru_maxrss, 'CPU_S', usage.ru_utime + usage.ru_stime,"
             " 'WALL_S', wall, file=sys.stderr)\n"
             "sys.exit(code)\n")


def measured_run(command: List[str]) -> Tuple[subprocess.CompletedProcess, Dict[str, float]]:
  """(`command`'s result, {"wall_s", "cpu_s", "peak_rss_kb"} of it alone),
  run from the repository under _PEAK_RSS, its output captured."""
  result = subprocess.run([sys.executable, "-c", _PEAK_RSS, *command], cwd=REPO,
                          capture_output=True, text=True, check=False)
  if "PEAK_RSS_KB" not in result.stderr:
    return result, {}
  peak_kb, _, cpu_s, _, wall_s = result.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[:5]
  return result, {"wall_s": float(wall_s), "cpu_s": float(cpu_s), "peak_rss_kb": int(peak_kb)}


def run_id_of(output: str) -> str:
  """The run id local_runner.py names on its first line ("... (run ID, logs: ...)")."""
  return output.split("(run ", 1)[1].split(",", 1)[0]


def generate_log(num_interactions: int, folder: str) -> None:
  """A generated interaction log of `num_interactions` rows in `folder`: users
  grow in proportion, the catalogue with the square root (GeneratorConfig.scaled)."""
  from data.interactions import generate_interactions  # pylint: disable=import-outside-toplevel
  scale = num_interactions / generate_interactions.GeneratorConfig().num_interactions
  subprocess.run([sys.executable, os.path.join(REPO, "data", "interactions",
                                               "generate_interactions.py"),
                  "--scale", str(scale), "--num-interactions", str(num_interactions),
                  "--output-dir", folder], check=True, capture_output=True)


def run_pipeline(args: List[str]) -> Dict[str, Any]:
  """Runs local_runner.py; returns its wall and CPU seconds, peak RSS and run id."""
  started = time.monotonic()
  result, usage = measured_run([sys.executable, os.path.join(REPO, "local_runner.py"), *args])
  wall = time.monotonic() - started
  if result.returncode != 0:
    raise RuntimeError(f"pipeline failed: {' '.join(args)}\n{result.stdout[-3000:]}"
                       f"{result.stderr[-3000:]}")
  run_id = run_id_of(result.stdout)
  return {"wall_s": wall, "cpu_s": usage["cpu_s"], "peak_rss_gb": usage["peak_rss_kb"] / 2**20,
          "run_id": run_id}


def node_runs(output_dir: str, family: configs.FamilyConfig, run_id: str):
  connection = tfx_metadata.sqlite_metadata_connection_config(
      OutputLayout(output_dir).metadata_path)
  node_ids = ["TFRecordExampleGen", "MovieLensExampleGen", "StatisticsGen", "ImportSchemaGen",
              "ExampleValidator", "AnomaliesGate", "Transform", "Trainer", "Evaluator",
              "Pusher", "TFLiteExporter", "EvalReport"]
  runs = run_summary.read_node_runs(connection, family.pipeline_name, node_ids, run_id)
  return {k: v for k, v in runs.items() if v.state != "not run"}


def serving_latency(model_dir: str, serialized: List[bytes], repeats: int) -> Dict[str, float]:
  """p50/p95 milliseconds of serving_default for 1 example and a batch of 32."""
  signature = tf.saved_model.load(model_dir).signatures["serving_default"]
  input_name = list(signature.structured_input_signature[1])[0]
  figures = {}
  for batch in (1, 32):
    request = tf.constant((serialized * 32)[:batch])
    signature(**{input_name: request})  # warm-up
    times = []
    for _ in range(repeats):
      started = time.perf_counter()
      signature(**{input_name: request})
      times.append((time.perf_counter() - started) * 1000)
    figures[f"batch{batch}_p50_ms"] = float(np.percentile(times, 50))
    figures[f"batch{batch}_p95_ms"] = float(np.percentile(times, 95))
  return figures


def tflite_latency(model_bytes: bytes, inputs: Dict[str, np.ndarray], repeats: int) -> Dict[str, float]:
  """p50/p95 milliseconds of one TFLite invocation on one example."""
  runner = tf.lite.Interpreter(model_content=model_bytes).get_signature_runner()
  details = runner.get_input_details()
  feed = {name: inputs[name][:1].astype(details[name]["dtype"]) for name in details}
  runner(**feed)
  times = []
  for _ in range(repeats):
    started = time.perf_counter()
    runner(**feed)
    times.append((time.perf_counter() - started) * 1000)
  return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
          "size_bytes": len(model_bytes)}


def saved_model_bytes(path: str) -> int:
  return sum(os.path.getsize(f) for f in glob.glob(os.path.join(path, "**"), recursive=True)
             if os.path.isfile(f))


def tflite_figures(family, trainer_model_dir: str, transform_uri: str,
                   serialized: List[bytes], repeats: int):
  """Each conversion the family's adapter supports, with parity and latency."""
  from components.tflite_exporter import executor as tflite_executor
  from modules.common.contract import QUANTIZATION_MODES, load_adapter
  adapter = load_adapter(family.tflite_adapter)
  saved_model = tf.saved_model.load(trainer_model_dir)
  model = adapter.model_for_conversion(saved_model, trainer_model_dir,
                                       tft.TFTransformOutput(transform_uri))
  transformed = saved_model.signatures["transform_features"](examples=tf.constant(serialized))
  inputs = {spec.name: transformed[spec.name].numpy() for spec in adapter.inputs}
  figures = {}
  for mode in adapter.quantization_modes or QUANTIZATION_MODES:
    model_bytes, parity = tflite_executor.convert_with_parity(
        adapter, saved_model, model, tf.constant(serialized), mode, 100)
    figures[mode] = {**tflite_latency(model_bytes, inputs, repeats), "parity": parity}
  return figures


def bench_family(family, repeats: int, skip: List[str]) -> Dict:
  out = tempfile.mkdtemp(prefix=f"bench-{family.name}-")
  result = {"family": family.name}
  result["fresh"] = run_pipeline(["--model", family.name, "--output-dir", out, *DIRECT])
  fresh_runs = node_runs(out, family, result["fresh"]["run_id"])
  result["fresh"]["component_s"] = {k: v.seconds for k, v in fresh_runs.items()}
  reruns = []
  for _ in range(repeats):
    rerun = run_pipeline(["--model", family.name, "--output-dir", out, *DIRECT])
    executed = [k for k, v in node_runs(out, family, rerun["run_id"]).items()
                if v.state == "executed"]
    reruns.append((rerun["wall_s"], executed))
  result["rerun"] = {"wall_s_median": statistics.median(w for w, _ in reruns),
                     "components_executed": sorted({c for _, e in reruns for c in e})}

  trainer = fresh_runs["Trainer"]
  model_dir = os.path.join(trainer.outputs["model"][0].uri, "Format-Serving")
  examples_uri = fresh_runs["Transform"].outputs["transformed_examples"][0].uri
  transform_uri = fresh_runs["Transform"].outputs["transform_graph"][0].uri
  result["trainer"] = plain_vs_tfx_trainer(family, trainer.seconds, transform_uri, examples_uri)

  gen = next(v for k, v in fresh_runs.items() if k.endswith("ExampleGen"))
  eval_files = glob.glob(os.path.join(gen.outputs["examples"][0].uri, "Split-eval", "*"))
  serialized = [r.numpy() for r in tf.data.TFRecordDataset(eval_files, "GZIP").take(200)]
  result["serving"] = {"saved_model": serving_latency(model_dir, serialized, repeats * 100),
                       "saved_model_bytes": saved_model_bytes(model_dir)}
  if family.tflite_adapter:
    result["serving"]["tflite"] = tflite_figures(family, model_dir, transform_uri, serialized,
                                                  repeats * 100)

  result["evaluator_intervals"] = evaluator_intervals(family, gen.outputs["examples"][0],
                                                     trainer.outputs["model"][0].uri, repeats)

  if "beam" not in skip:
    result["beam"] = {}
    for mode, args in (("in_process", DIRECT), ("multi_processing_2", MULTI)):
      beam_out = tempfile.mkdtemp(prefix=f"bench-beam-{family.name}-")
      beam_run = run_pipeline(["--model", family.name, "--output-dir", beam_out,
                               "--train-steps", "1", "--min-metric", "0", *args])
      runs = node_runs(beam_out, family, beam_run["run_id"])
      result["beam"][mode] = {k: runs[k].seconds for k in ("StatisticsGen", "Transform")}
  return result


def evaluator_intervals(family, examples, model_uri: str, repeats: int) -> Dict:
  """The Evaluator's seconds with and without TFMA's confidence intervals
  (bench/evaluator_intervals.py), in a process of its own."""
  split_names = json.loads(examples.properties["split_names"].string_value)
  out = subprocess.run(
      [sys.executable, os.path.join(REPO, "bench", "evaluator_intervals.py"),
       "--model", family.name, "--examples-uri", examples.uri, "--model-uri", model_uri,
       "--repeats", str(repeats), "--split-names", *split_names],
      cwd=REPO, capture_output=True, text=True, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def plain_vs_tfx_trainer(family, tfx_seconds: float, transform_uri: str, examples_uri: str):
  """The family's run_fn on the same transformed data, called directly (no
  TFX launcher, MLMD or artifact handling), in a fresh process like TFX's."""
  code = (
      "import os,sys,time,glob; os.environ['TF_USE_LEGACY_KERAS']='1'; sys.path.insert(0, %r)\n"
      "import importlib, tempfile\n"
      "from tests.tft_testing import make_fn_args\n"
      "run_fn = %r.rsplit('.', 1); run_fn = getattr(importlib.import_module(run_fn[0]), run_fn[1])\n"
      "args = make_fn_args(tempfile.mkdtemp(), os.path.join(%r, ''), "
      "glob.glob(os.path.join(%r, 'Split-train', '*')), glob.glob(os.path.join(%r, 'Split-validation', '*')), %d, %d)\n"
      "t = time.monotonic(); run_fn(args); print('SECONDS', time.monotonic() - t)\n"
  ) % (REPO, family.run_fn, transform_uri, examples_uri, examples_uri, family.train_steps,
       family.eval_steps)
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  plain = float(out.stdout.rsplit("SECONDS", 1)[1])
  return {"tfx_trainer_s": tfx_seconds, "plain_run_fn_s": plain,
          "throughput_ratio_tfx_over_plain": plain / tfx_seconds}


def bench_scale(num_interactions: int) -> Dict:
  """The two-tower pipeline on a generated log of `num_interactions` rows
  (`generate_log`)."""
  data = tempfile.mkdtemp(prefix="bench-scale-data-")
  generate_log(num_interactions, data)
  with open(os.path.join(data, "u.data")) as stream:
    interactions = sum(1 for _ in stream)
  out = tempfile.mkdtemp(prefix="bench-scale-")
  family = configs.get_family("two_tower")
  # What else kept the cores busy just before: a figure measured on a shared
  # machine is read with this beside it.
  load_before = os.getloadavg()[0]
  # Generated data: not the family's default data the reference statistics
  # describe, so no drift check.
  figures = run_pipeline(["--model", "two_tower", "--data-dir", data, "--output-dir", out,
                          "--min-metric", "0", "--no-drift-check", *DIRECT])
  figures["component_s"] = {k: v.seconds
                            for k, v in node_runs(out, family, figures["run_id"]).items()}
  figures["interactions"] = interactions
  figures["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
  return figures


def machine() -> Dict:
  import tfx as tfx_package
  mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
  return {"cores": os.cpu_count(), "ram_gb": round(mem_gb, 1), "python": platform.python_version(),
          "tensorflow": tf.__version__, "tfx": tfx_package.__version__,
          "platform": platform.platform()}


# Issue 18's scale goals, by generated interactions: (wall seconds, peak RSS
# GB or None). Other sizes are measured but have no goal.
_SCALE_GOALS = {1_000_000: (150, None), 10_000_000: (25 * 60, 8)}


def _goal_rows(results: Dict) -> List[str]:
  """Issue 18's targets (and issue 19's interval cost), each beside what was
  measured: (goal, measured, met?)."""
  families, rows = results["families"], []

  def row(goal: str, measured: str, met: bool) -> None:
    rows.append(f"| {goal} | {measured} | {'yes' if met else '**no**'} |")

  if "cnn" in families:
    cnn = families["cnn"]
    row("CNN fresh run <= 90 s", f"{cnn['fresh']['wall_s']:.0f} s (Trainer "
        f"{cnn['fresh']['component_s'].get('Trainer', 0):.0f} s)", cnn["fresh"]["wall_s"] <= 90)
  if "lstm" in families:
    lstm = families["lstm"]
    saved_model = lstm["serving"]["saved_model"]["batch1_p50_ms"]
    tflite = lstm["serving"].get("tflite", {}).get("float32")
    if tflite:
      row("LSTM TFLite p50 <= 0.5x SavedModel p50, batch 1",
          f"{tflite['p50_ms']:.2f} ms vs {saved_model:.2f} ms "
          f"({tflite['p50_ms'] / saved_model:.2f}x)", tflite["p50_ms"] <= 0.5 * saved_model)
    components = lstm["fresh"]["component_s"]
    for component, limit in (("TFLiteExporter", 10), ("Evaluator", 15)):
      if component in components:
        row(f"LSTM {component} <= {limit} s", f"{components[component]:.1f} s",
            components[component] <= limit)
  for name, r in families.items():
    if "evaluator_intervals" in r:
      ratio = r["evaluator_intervals"]["ratio_of_medians"]
      row(f"{name} Evaluator with intervals <= 2x without", f"{ratio:.2f}x", ratio <= 2)
  scale = results.get("scale")
  if scale and scale["interactions"] in _SCALE_GOALS:
    limit_s, limit_gb = _SCALE_GOALS[scale["interactions"]]
    met = scale["wall_s"] <= limit_s and (limit_gb is None or scale["peak_rss_gb"] <= limit_gb)
    goal = (f"two-tower on {scale['interactions']:,} interactions <= {limit_s} s"
            + (f", <= {limit_gb} GB" if limit_gb else ""))
    row(goal, f"{scale['wall_s']:.0f} s, {scale['peak_rss_gb']:.2f} GB", met)
  return rows


def write_markdown(results: Dict) -> None:
  m = results["machine"]
  lines = ["# Benchmarks", "", f"Machine: {m['cores']} cores, {m['ram_gb']} GB RAM, "
           f"Python {m['python']}, TensorFlow {m['tensorflow']}, TFX {m['tfx']} ({m['platform']}).",
           "Written by `make bench` (bench/run_bench.py); raw figures in bench/results/.", "",
           "| family | fresh run (s) | re-run (s) | re-run executed | Trainer TFX/plain throughput "
           "| serving_default p50 1 / 32 (ms) | TFLite float / dyn-range / int8 p50 (ms) "
           "| SavedModel / TFLite float / dyn-range / int8 size (KB) "
           "| Stats+Transform in-process / multi-proc (s) | fresh run / plain run_fn |",
           "|" + "---|" * 10]
  for name, r in results["families"].items():
    s = r["serving"]
    tfl = s.get("tflite", {})
    beam = r.get("beam", {})
    def stats_transform(mode):
      return f"{sum(beam[mode].values()):.1f}" if mode in beam else "-"
    def tflite(key, fmt, mark_failures=False):
      # "(gate fails)": the conversion would not pass the exporter's parity gate.
      def cell(mode):
        failed = mark_failures and not tfl[mode]["parity"]["passed"]
        return fmt(tfl[mode][key]) + (" (gate fails)" if failed else "")
      return " / ".join(cell(mode) if mode in tfl else "-"
                        for mode in ("float32", "dynamic_range", "int8"))
    lines.append(
        f"| {name} | {r['fresh']['wall_s']:.0f} | {r['rerun']['wall_s_median']:.0f} | "
        f"{len(r['rerun']['components_executed'])} | "
        f"{r['trainer']['throughput_ratio_tfx_over_plain']:.2f} | "
        f"{s['saved_model']['batch1_p50_ms']:.2f} / {s['saved_model']['batch32_p50_ms']:.2f} | "
        f"{tflite('p50_ms', lambda v: f'{v:.3f}', mark_failures=True)} | {s['saved_model_bytes'] // 1024} / "
        f"{tflite('size_bytes', lambda v: str(v // 1024))} | "
        f"{stats_transform('in_process')} / {stats_transform('multi_processing_2')} | "
        f"{r['fresh']['wall_s'] / r['trainer']['plain_run_fn_s']:.1f}x |")
  lines += ["", "'fresh run / plain run_fn': the whole pipeline's wall time over the "
            "family's `run_fn` called directly on the same transformed data (what a user pays "
            "for the pipeline around training).", "", "Goals:", "",
            "| goal | measured | met |", "|---|---|---|", *_goal_rows(results)]
  lines += ["", "TFLite parity on eval examples, as the exporter's gate measures it:", "",
            "| family | mode | max abs diff | metric: SavedModel / TFLite | gate |",
            "|---|---|---|---|---|"]
  for name, r in results["families"].items():
    for mode, figures in r["serving"].get("tflite", {}).items():
      parity = figures["parity"]
      metric = parity["metric"]
      lines.append(f"| {name} | {mode} | {parity['max_abs_diff']:.2g} | {metric}: "
                   f"{parity['savedmodel_' + metric]:.4f} / {parity['tflite_' + metric]:.4f} | "
                   f"{'passes' if parity['passed'] else 'fails'} "
                   f"({parity['criterion'].replace('|', chr(92) + '|')}) |")
  intervals = {name: r["evaluator_intervals"] for name, r in results["families"].items()
               if "evaluator_intervals" in r}
  if intervals:
    lines += ["", "Evaluator with and without TFMA's confidence intervals (TFX's Evaluator "
              "executor on the fresh run's model and eval split, alternated after a warm-up; "
              "bench/evaluator_intervals.py). Goal: at most 2x.", "",
              "| family | method | without (s, median) | with (s, median) | ratio |",
              "|---|---|---|---|---|"]
    for name, cost in intervals.items():
      lines.append(f"| {name} | {cost['method']} | "
                   f"{statistics.median(cost['without_intervals_s']):.1f} | "
                   f"{statistics.median(cost['with_intervals_s']):.1f} | "
                   f"{cost['ratio_of_medians']:.2f}x |")
  if "scale" in results:
    sc = results["scale"]
    cpu = f", {sc['cpu_s']:.0f} s CPU" if "cpu_s" in sc else ""
    load = sc.get("load_average_1min")
    busy = (f" (1-minute load average {load['before']:.1f} before, {load['after']:.1f} after, "
            f"on {m['cores']} cores)") if load else ""
    lines += ["", f"Scale: two-tower on {sc['interactions']:,} generated interactions: "
              f"{sc['wall_s']:.0f} s wall{cpu}, peak RSS {sc['peak_rss_gb']:.2f} GB{busy}.", "",
              "| component | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in sc["component_s"].items()]
    beam_s = sum(sc["component_s"].get(k, 0.0) for k in _BEAM_COMPONENTS)
    lines += ["", f"Beam components ({', '.join(_BEAM_COMPONENTS)}) took {beam_s:.0f} s of "
              f"the {sc['wall_s']:.0f} s. They are the first to move off this machine as "
              "data grows: `kubeflow_runner.py --beam-preset dataflow` (or `flink`) runs "
              "them as distributed Beam jobs; `local_runner.py --beam-arg=--runner=...` "
              "does the same for a local run. The Trainer stays a single process "
              "(tf.distribute on a GPU node is the next step there)."]
  lines += _engine_scale_lines()
  lines += _compression_lines()
  lines += _read_only_lines()
  # What the tables cannot say (measurements under load, why a target is
  # out of reach) is written by hand in bench/notes.md and kept across runs.
  if os.path.exists(NOTES):
    with open(NOTES) as stream:
      lines += ["", stream.read().rstrip()]
  with open(os.path.join(REPO, "BENCHMARKS.md"), "w") as stream:
    stream.write("\n".join(lines) + "\n")


def _engine_scale_lines() -> List[str]:
  """The table of bench/engine_scale.py's runs, smallest log first."""
  runs = []
  for path in glob.glob(os.path.join(RESULTS, "engines", "*.json")):
    with open(path) as stream:
      runs.append(json.load(stream))
  if not runs:
    return []
  runs.sort(key=lambda run: (run["preset"], run["interactions"]))
  components = [name for name in ("MovieLensExampleGen", "StatisticsGen", "Transform", "Trainer",
                                  "Evaluator")
                if any(name in run.get("component_s", {}) for run in runs)]

  def outcome(run):
    return "done" if run["returncode"] == 0 else (run["stopped_by"] or f"exit {run['returncode']}")

  def programs(run):
    return ", ".join(f"{name} {gib:.2f}" for name, gib in
                     sorted(run["peak_rss_gib_by_program"].items(), key=lambda kv: -kv[1]))

  lines = ["", "Engines at scale (bench/engine_scale.py): the two-tower pipeline on generated "
           "logs, the peak resident memory of all the run's processes summed "
           "(sampled every second).", "",
           "| interactions | preset | memory settings | outcome | wall (s) | peak RSS (GiB) "
           "| by program (GiB) | " + " | ".join(f"{name} (s)" for name in components) + " |",
           "|" + "---|" * (7 + len(components))]
  for run in runs:
    settings = " ".join(run.get("jvm_flags", [])) + "".join(
        f" managed {value}" for key, value in run.get("flink_conf", {}).items()
        if key == "taskmanager.memory.managed.size")
    seconds = [f"{run['component_s'][name]:.0f}" if name in run.get("component_s", {}) else "-"
               for name in components]
    lines.append(f"| {run['interactions']:,} | {run['preset']} | {settings.strip() or '-'} | "
                 f"{outcome(run)} | {run['wall_s']} | {run['peak_rss_gib']:.2f} | "
                 f"{programs(run)} | " + " | ".join(seconds) + " |")
  return lines


def _compression_lines() -> List[str]:
  """The tables of bench/compression.py's runs, one per family, with the
  CNN's targets, and the compressions each family refuses."""
  lines = []
  for path in sorted(glob.glob(os.path.join(RESULTS, "compression", "*.json"))):
    with open(path) as stream:
      figures = json.load(stream)
    rows, metric = figures["rows"], figures["metric"]
    float_gzip = next(row["gzip_size_bytes"] for row in rows
                      if row["compression"] == "none" and row["tflite"] == "float32")
    lines += ["", f"Compression of the {figures['family']} (bench/compression.py, "
              f"{figures['date']}): a run at its default {figures['train_steps']} steps with "
              f"each `--compression`, {metric} (the TFLite parity gate's metric) on all "
              f"{figures['eval_examples']:,} eval examples of each run; latency is one TFLite "
              "invocation on one example.", "",
              f"| compression | TFLite | size (KB) | gzip (KB) | gzip / float | SavedModel {metric} "
              f"| TFLite {metric} | change from float (points, 95% CI) | TFLite p50 (ms) "
              "| parity gate |", "|" + "---|" * 10]
    for row in rows:
      change = row["change_from_float"]
      low, high = (100 * bound for bound in change["ci95"])
      lines.append(
          f"| {row['compression']} | {row['tflite']} | {row['size_bytes'] / 1024:.0f} | "
          f"{row['gzip_size_bytes'] / 1024:.0f} | {row['gzip_size_bytes'] / float_gzip:.2f} | "
          f"{row['savedmodel_quality']:.4f} | {row['tflite_quality']:.4f} | "
          f"{100 * change['value'] + 0.0:+.1f} [{low + 0.0:+.1f}, {high + 0.0:+.1f}] | "
          f"{row['p50_ms']:.3f} | {'passes' if row['parity_gate']['passed'] else 'fails'} |")
    if "targets" in figures:
      lines += ["", "| target | measured | goal | met |", "|---|---|---|---|"]
      for name, target in figures["targets"].items():
        lines.append(f"| {name.replace('_', ' ')} | {target['value'] + 0.0:.4f} | "
                     f"{target['goal']} | {'yes' if target['met'] else 'no'} |")
  for family in configs.FAMILIES.values():
    for compression, why in family.refused_compressions:
      lines += ["", f"{family.name} refuses `--compression {compression}`: {why}."]
  return lines


def _read_only_lines() -> List[str]:
  """bench/read_only_commands.py's table: each read-only command of each
  family, median wall time and peak memory beside its goal."""
  path = os.path.join(RESULTS, "read_only", "commands.json")
  if not os.path.exists(path):
    return []
  with open(path) as stream:
    figures = json.load(stream)
  lines = ["", f"Read-only commands (bench/read_only_commands.py, {figures['date']}): each "
           f"run {figures['repeats']} times as its own process, as a user runs it; medians of "
           "the wall time (start to exit) and of the process's peak RSS. `review` shows the "
           "latest evaluation, `predict` scores one real eval instance with the newest TFLite "
           "export.", "",
           "| family | command | wall (s) | peak (MiB) | goal | met |", "|---|---|---|---|---|---|"]
  for row in figures["rows"]:
    goal = row["goal"]
    lines.append(
        f"| {row['family']} | `{row['command']}` | {row['wall_s']:.2f} | {row['peak_mib']:.0f} | "
        + (f"<= {goal['wall_s']:g} s, <= {goal['peak_mib']} MiB | "
           f"{'yes' if row['met'] else '**no**'} |" if goal else "- | - |"))
  return lines


def _load_results() -> Dict:
  """The figures of the last run, as main() holds them, from bench/results/."""
  results = {"families": {}}
  for path in sorted(glob.glob(os.path.join(RESULTS, "*.json"))):
    with open(path) as stream:
      figures = json.load(stream)
    results["machine"] = figures.pop("machine")
    name = os.path.splitext(os.path.basename(path))[0]
    if name == "scale":
      results["scale"] = figures
    else:
      results["families"][figures.pop("family")] = {"family": name, **figures}
  return results


def _positive_int(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
  return value


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--families", nargs="*", default=sorted(configs.FAMILIES),
                      help="families to measure on their shipped data (none: only the "
                      "scale run; the other families' last figures stay in BENCHMARKS.md)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--scale-interactions", type=_positive_int, default=1_000_000,
                      metavar="N", help="generated interactions of the two-tower scale run "
                      "(default: %(default)s)")
  parser.add_argument("--skip", nargs="*", default=[], choices=["scale", "beam"])
  parser.add_argument("--markdown-only", action="store_true",
                      help="rewrite BENCHMARKS.md from bench/results/*.json, measuring nothing")
  args = parser.parse_args(argv)
  if args.markdown_only:
    write_markdown(_load_results())
    return 0
  os.makedirs(RESULTS, exist_ok=True)
  # Figures not measured this time are kept from the last run that measured them.
  results = {**_load_results(), "machine": machine()}
  for name in args.families:
    results["families"][name] = bench_family(configs.get_family(name), args.repeats, args.skip)
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as stream:
      json.dump({"machine": results["machine"], **results["families"][name]}, stream, indent=2)
    print(json.dumps(results["families"][name], indent=2), flush=True)
  if "scale" not in args.skip and "two_tower" in configs.FAMILIES:
    results["scale"] = bench_scale(args.scale_interactions)
    with open(os.path.join(RESULTS, "scale.json"), "w") as stream:
      json.dump({"machine": results["machine"], **results["scale"]}, stream, indent=2)
  write_markdown(results)
  return 0


if __name__ == "__main__":
  sys.exit(main())
