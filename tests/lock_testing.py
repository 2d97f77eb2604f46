"""A run lock held by another process, as a second run meets it."""
import subprocess
import sys

from tests.e2e_helpers import REPO_ROOT

# Takes the lock of argv[1] under run id argv[2] (its command: "hold <id>"),
# says "held" (or "refused", exit 5), holds it argv[3] seconds.
_HOLD = ("import sys, time\n"
         "from runners import run_lock\n"
         "try:\n"
         "  lock = run_lock.RunLock(sys.argv[1], sys.argv[2], command='hold ' + sys.argv[2])\n"
         "except run_lock.OutputLocked:\n"
         "  print('refused', flush=True)\n"
         "  sys.exit(5)\n"
         "print('held', flush=True)\n"
         "time.sleep(float(sys.argv[3]))\n"
         "lock.release()\n")


def holder(output_dir, run_id: str, seconds: float = 60.0) -> subprocess.Popen:
  """A process trying to take the lock; its first line says whether it did."""
  return subprocess.Popen([sys.executable, "-c", _HOLD, str(output_dir), run_id, str(seconds)],
                          cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)


def started_holder(output_dir, run_id: str, seconds: float = 60.0) -> subprocess.Popen:
  """A process holding the lock (once this returns)."""
  process = holder(output_dir, run_id, seconds)
  assert process.stdout.readline().strip() == "held"
  return process
