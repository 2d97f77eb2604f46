"""One run at a time per output directory.

Two runs on one output directory would both train and both push, and each
would read the other's executions back from the shared MLMD. A run therefore
holds an exclusive `flock(2)` on `OUTPUT/.run.lock` for its whole life and
writes its holder's details (pid, host, start time, command, run id) into
it, which a second run names when it stops.

The kernel holds the lock, not the file: it is released when the holder's
process ends in any way (killed too), so a lock left by a dead run is simply
taken, atomically, by the next `flock` (no window in which two runs both
believe they hold it, whatever pid the dead run's details name, reused or
not). The file itself is never removed (removing it would let a run lock an
unlinked file while another locks its successor); a holder empties it on
release.
"""
import dataclasses
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from typing import Optional

from runners.layout import OutputLayout
from runners.preflight import EXIT_BAD_ARGUMENTS, EXIT_OUTPUT_LOCKED

# How long a run waits for the holder's details, which the holder writes just
# after taking the lock.
_DETAILS_WAIT_S = 2.0


@dataclasses.dataclass(frozen=True)
class Holder:
  """Who holds (or last held) an output directory's lock."""
  pid: int
  host: str
  started: str   # UTC, ISO 8601
  command: str
  run_id: str

  def describe(self) -> str:
    return (f"pid {self.pid} on {self.host}, started {self.started}, run {self.run_id}: "
            f"{self.command}")


class OutputLocked(RuntimeError):
  """Another run holds the output directory."""

  def __init__(self, lock_path: str, holder: Optional[Holder]):
    self.lock_path = lock_path
    self.holder = holder
    held_by = (holder.describe() if holder
               else "a run that has not written its details (yet)")
    super().__init__(f"another run is using {os.path.dirname(lock_path)}: {held_by}. "
                     f"Wait for it to finish, or use another --output-dir (lock: {lock_path})")


def _read_holder(descriptor: int) -> Optional[Holder]:
  """The details in an open lock file; None when empty or unreadable."""
  content = os.pread(descriptor, 65536, 0)
  try:
    return Holder(**json.loads(content.decode("utf-8")))
  except (ValueError, TypeError):  # Empty, half-written or not ours.
    return None


class RunLock:
  """The exclusive lock of one output directory, held until `release()`.

  `previous` is the holder whose details were left by a run that ended
  without releasing it (killed, say), or None.
  """

  def __init__(self, output_dir: str, run_id: str, command: Optional[str] = None):
    self.path = OutputLayout(output_dir).lock_path
    os.makedirs(output_dir, exist_ok=True)
    descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
      fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
      if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
        os.close(descriptor)
        raise
      holder = _read_holder(descriptor)
      deadline = time.monotonic() + _DETAILS_WAIT_S
      while holder is None and time.monotonic() < deadline:
        time.sleep(0.1)
        holder = _read_holder(descriptor)
      os.close(descriptor)
      raise OutputLocked(self.path, holder) from None
    self._descriptor = descriptor
    self.previous = _read_holder(descriptor)
    self.holder = Holder(
        pid=os.getpid(), host=socket.gethostname(),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command=command if command is not None else shlex.join([sys.executable, *sys.argv]),
        run_id=run_id)
    details = json.dumps(dataclasses.asdict(self.holder)).encode("utf-8")
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, details, 0)
    os.fsync(descriptor)

  def release(self) -> None:
    """Empties the details and unlocks; the next run takes the lock at once."""
    if self._descriptor is None:
      return
    os.ftruncate(self._descriptor, 0)
    fcntl.flock(self._descriptor, fcntl.LOCK_UN)
    os.close(self._descriptor)
    self._descriptor = None

  def __enter__(self) -> "RunLock":
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()


def take_or_exit(output_dir: str, run_id: str) -> RunLock:
  """The output directory's lock for this run, or an exit naming the holder.

  Exits EXIT_OUTPUT_LOCKED when another run holds it, EXIT_BAD_ARGUMENTS when
  the directory cannot be locked at all; says when it took the lock over.
  """
  try:
    lock = RunLock(output_dir, run_id)
  except OutputLocked as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(EXIT_OUTPUT_LOCKED)
  except OSError as error:
    print(f"error: --output-dir {output_dir} cannot be locked for this run: {error}",
          file=sys.stderr)
    sys.exit(EXIT_BAD_ARGUMENTS)
  if lock.previous is not None:
    print(f"(took over {lock.path} from a run that ended without releasing it: "
          f"{lock.previous.describe()})", flush=True)
  return lock
