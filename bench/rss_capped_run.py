"""Runs a command and kills it once its processes together pass a memory cap.

For a run that would otherwise take the machine's memory (the two-tower
pipeline on 10M generated interactions: the in-process DirectRunner holds
every shuffle in memory). Prints the summed RSS of the command's process
group every 15 s, then one line: how it ended, after how many seconds, at
what peak, and each program's own peak (the Python run, a job server's JVM).
Exit status: the command's own; 124 when the cap or the time limit stopped it.

  python bench/rss_capped_run.py --limit-gb 8 --timeout-s 1800 -- \\
      python local_runner.py --model two_tower --data-dir DIR ...

bench/engine_scale.py runs the pipeline through `capped_run`.
"""
import argparse
import collections
import dataclasses
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_REPORT_EVERY_S = 15
STOPPED_STATUS = 124


def group_rss_bytes(group_id: int) -> Dict[str, int]:
  """Resident memory of the processes in process group `group_id`, summed
  by program name (`java`, `python`, ...)."""
  by_program = collections.Counter()
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/stat") as stat:
        name, fields = stat.read().split(" (", 1)[1].rsplit(")", 1)
    except OSError:  # Ended while we looked.
      continue
    # Fields after the command name: state is 0, pgrp 2, rss (pages) 21.
    fields = fields.split()
    if int(fields[2]) == group_id:
      by_program[name] += int(fields[21]) * _PAGE_BYTES
  return dict(by_program)


@dataclasses.dataclass
class CappedRun:
  returncode: int                      # the command's, or STOPPED_STATUS
  stopped_by: Optional[str]            # "memory cap", "time limit" or None
  wall_s: float
  peak_bytes: int                      # of the summed RSS
  peak_bytes_by_program: Dict[str, int]
  samples: List[Tuple[float, int]]     # (seconds, summed RSS) every _REPORT_EVERY_S


def capped_run(command: List[str], limit_bytes: float, timeout_s: float,
               report: Callable[[str], None] = lambda line: None, **popen_kwargs) -> CappedRun:
  """Runs `command` in its own process group, sampling its memory every
  second; kills the group past `limit_bytes` or `timeout_s`."""
  started = time.monotonic()
  process = subprocess.Popen(command, start_new_session=True, **popen_kwargs)
  peak, by_program, samples, next_report, stopped = 0, collections.Counter(), [], 0.0, None
  while process.poll() is None:
    rss_by_program, elapsed = group_rss_bytes(process.pid), time.monotonic() - started
    rss = sum(rss_by_program.values())
    peak = max(peak, rss)
    for name, value in rss_by_program.items():
      by_program[name] = max(by_program[name], value)
    if elapsed >= next_report:
      samples.append((round(elapsed), rss))
      report(f"{elapsed:.0f} s: {rss / 2**30:.2f} GiB")
      next_report += _REPORT_EVERY_S
    over_cap = rss > limit_bytes
    if over_cap or elapsed > timeout_s:
      stopped = "memory cap" if over_cap else "time limit"
      os.killpg(process.pid, signal.SIGKILL)
      break
    time.sleep(1)
  code = process.wait()
  return CappedRun(STOPPED_STATUS if stopped else code, stopped, time.monotonic() - started,
                   peak, dict(by_program), samples)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--limit-gb", type=float, required=True, help="cap on summed RSS (GiB)")
  parser.add_argument("--timeout-s", type=float, required=True)
  parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
  args = parser.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    parser.error("give the command to run after --")
  run = capped_run(command, args.limit_gb * 2**30, args.timeout_s,
                   report=lambda line: print(line, flush=True))
  ending = f"stopped by the {run.stopped_by}" if run.stopped_by else f"exit status {run.returncode}"
  programs = ", ".join(f"{name} {value / 2**30:.2f}"
                       for name, value in sorted(run.peak_bytes_by_program.items()))
  print(f"{ending} after {run.wall_s:.0f} s, peak {run.peak_bytes / 2**30:.2f} GiB "
        f"({programs})", flush=True)
  return run.returncode


if __name__ == "__main__":
  sys.exit(main())
