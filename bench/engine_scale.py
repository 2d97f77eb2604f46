"""The two-tower pipeline on generated logs of growing size, its Beam stages
on one engine, with the memory of every process of the run summed (the
Python run and, on Flink or Spark, the job server's JVM) and the time of
each component: whether memory stays flat and time grows no faster than the
data. Writes bench/results/engines/two_tower_<N>_<preset>.json, one file a
run; `bench/run_bench.py --markdown-only` puts them into BENCHMARKS.md.

  .venv/bin/python bench/engine_scale.py --preset flink --interactions 1000000 3000000

The logs come from data/interactions/generate_interactions.py at the scale
that gives N interactions (users grow with it, the catalogue with its square
root), generated once into --data-root. A run is killed once its processes
pass --limit-gb, and recorded so.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from typing import List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=wrong-import-position
from bench import rss_capped_run  # noqa: E402
from bench.run_bench import generate_log, machine, node_runs, run_id_of  # noqa: E402
from components import job_servers  # noqa: E402
from pipeline import configs  # noqa: E402
from runners import beam_presets  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "results", "engines")


def generated_log(num_interactions: int, data_root: str) -> str:
  """The folder of a generated log of `num_interactions` rows, made once."""
  folder = os.path.join(data_root, f"interactions-{num_interactions}")
  if not os.path.exists(os.path.join(folder, "u.data")):
    generate_log(num_interactions, folder)
  return folder


def engine_settings(preset: str) -> dict:
  """What bounds the engine's memory, as this checkout sets it."""
  server = beam_presets.JOB_SERVER_PRESETS.get(preset)
  if server is None:
    return {"engine": "Beam's in-process Python runner"}
  settings = {"engine": f"{server.engine} job server, local master {server.local_master}",
              "jvm_flags": [flag for flag in server.jvm_flags if flag.startswith("-X")]}
  if server is job_servers.FLINK:
    with open(os.path.join(job_servers.FLINK_CONF_DIR, "flink-conf.yaml"),
              encoding="utf-8") as f:
      settings["flink_conf"] = dict(line.strip().split(": ", 1) for line in f
                                    if line.strip() and not line.startswith("#"))
  return settings


def measure(num_interactions: int, preset: str, data_root: str, limit_gb: float,
            timeout_s: float, beam_args: List[str]) -> dict:
  data_dir = generated_log(num_interactions, data_root)
  output_dir = tempfile.mkdtemp(prefix=f"engine-scale-{num_interactions}-{preset}-")
  # Generated data: not what the family's reference statistics describe, so
  # no drift check; an absolute floor of 0, so that the run goes to the end.
  command = [sys.executable, os.path.join(REPO, "local_runner.py"), "--model", "two_tower",
             "--data-dir", data_dir, "--output-dir", output_dir, "--min-metric", "0",
             "--no-drift-check", "--beam-preset", preset,
             *(f"--beam-arg={arg}" for arg in beam_args)]
  log_path = os.path.join(output_dir, "run.out")
  with open(log_path, "w", encoding="utf-8") as log:
    run = rss_capped_run.capped_run(command, limit_gb * 2**30, timeout_s,
                                    report=lambda line: print(line, flush=True),
                                    cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
  with open(log_path, encoding="utf-8") as log:
    first_line = log.readline()
  figures = {
      "interactions": num_interactions, "preset": preset, "beam_args": beam_args,
      **engine_settings(preset),
      "date": datetime.date.today().isoformat(), "limit_gib": limit_gb,
      "returncode": run.returncode, "stopped_by": run.stopped_by, "wall_s": round(run.wall_s),
      "peak_rss_gib": round(run.peak_bytes / 2**30, 2),
      "peak_rss_gib_by_program": {name: round(value / 2**30, 2)
                                  for name, value in run.peak_bytes_by_program.items()},
      "rss_gib_every_15_s": [round(value / 2**30, 2) for _, value in run.samples],
      "load_average_1min_after": round(os.getloadavg()[0], 1),
      "output_dir": output_dir,
  }
  if "(run " in first_line:
    figures["component_s"] = {name: round(node.seconds, 1) for name, node in node_runs(
        output_dir, configs.get_family("two_tower"), run_id_of(first_line)).items()
                              if node.seconds}
  return figures


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--preset", choices=beam_presets.PRESETS, required=True)
  parser.add_argument("--interactions", type=int, nargs="+", required=True)
  parser.add_argument("--beam-arg", action="append", default=[],
                      help="a Beam option after the preset's (local_runner.py --beam-arg)")
  parser.add_argument("--limit-gb", type=float, default=8.0)
  parser.add_argument("--timeout-s", type=float, default=3 * 3600)
  parser.add_argument("--data-root", default=os.path.join(tempfile.gettempdir(),
                                                          "engine-scale-data"))
  args = parser.parse_args(argv)
  os.makedirs(RESULTS, exist_ok=True)
  for num_interactions in args.interactions:
    figures = measure(num_interactions, args.preset, args.data_root, args.limit_gb,
                      args.timeout_s, args.beam_arg)
    figures = {"machine": machine(), **figures}
    variant = "".join(f"_{arg.lstrip('-').split('=')[0]}-{arg.split('=')[-1]}"
                      for arg in args.beam_arg)
    path = os.path.join(RESULTS, f"two_tower_{num_interactions}_{args.preset}{variant}.json")
    with open(path, "w", encoding="utf-8") as f:
      json.dump(figures, f, indent=2)
    print(json.dumps({k: v for k, v in figures.items() if k != "rss_gib_every_15_s"}, indent=2),
          flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
