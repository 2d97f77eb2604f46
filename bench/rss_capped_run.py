"""Runs a command and kills it once its processes together pass a memory cap.

For a run that would otherwise take the machine's memory (the two-tower
pipeline on 10M generated interactions: the in-process DirectRunner holds
every shuffle in memory). Prints the summed RSS of the command's process
group every 15 s, then one line: how it ended, after how many seconds, at
what peak. Exit status: the command's own; 124 when the cap or the time
limit stopped it.

  python bench/rss_capped_run.py --limit-gb 8 --timeout-s 1800 -- \\
      python local_runner.py --model two_tower --data-dir DIR ...
"""
import argparse
import os
import signal
import subprocess
import sys
import time

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_REPORT_EVERY_S = 15


def group_rss_bytes(group_id: int) -> int:
  """Summed resident memory of every process in process group `group_id`."""
  total = 0
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open(f"/proc/{pid}/stat") as stat:
        # Fields after the command name: state is 0, pgrp 2, rss (pages) 21.
        fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:  # Ended while we looked.
      continue
    if int(fields[2]) == group_id:
      total += int(fields[21]) * _PAGE_BYTES
  return total


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
  started = time.monotonic()
  process = subprocess.Popen(command, start_new_session=True)
  peak, next_report, stopped = 0, 0.0, None
  while process.poll() is None:
    rss, elapsed = group_rss_bytes(process.pid), time.monotonic() - started
    peak = max(peak, rss)
    if elapsed >= next_report:
      print(f"{elapsed:.0f} s: {rss / 2**30:.2f} GiB", flush=True)
      next_report += _REPORT_EVERY_S
    over_cap = rss > args.limit_gb * 2**30
    if over_cap or elapsed > args.timeout_s:
      stopped = "memory cap" if over_cap else "time limit"
      os.killpg(process.pid, signal.SIGKILL)
      break
    time.sleep(1)
  code = process.wait()
  ending = f"stopped by the {stopped}" if stopped else f"exit status {code}"
  print(f"{ending} after {time.monotonic() - started:.0f} s, peak {peak / 2**30:.2f} GiB",
        flush=True)
  return 124 if stopped else code


if __name__ == "__main__":
  sys.exit(main())
