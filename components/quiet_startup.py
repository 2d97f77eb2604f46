"""Keeps an entry point's terminal for progress and real errors.

Importing TensorFlow and the Google client libraries prints ~30 lines that
nobody running this project can act on, before any progress:

- FutureWarnings of google.* libraries about this Python version and the
  pinned google-cloud-storage, one per client package;
- "Unable to register cuDNN/cuFFT/cuBLAS factory" lines, which TensorFlow's
  C++ code writes straight to file descriptor 2 at ERROR level, so
  TF_CPP_MIN_LOG_LEVEL cannot drop them without also dropping real C++ errors;
  likewise the TFLite converter's "Ignored output_format." warnings about
  options TensorFlow itself passes it.

`quiet_startup()` drops exactly those: the warnings through a filter, the
C++ lines through a small filter process that stands between descriptor 2
and the terminal and passes every other line through unchanged. A process,
not a thread: when the entry point dies (a C++ CHECK failure aborts it), the
filter still forwards every line it wrote before. TensorFlow's C++ INFO and
WARNING lines are dropped by TF_CPP_MIN_LOG_LEVEL=2; Python logging is left
to the entry point (the local runner sends it to the run's log file).

Call it first in an entry point's `__main__` block, before TensorFlow is
imported; importing this module imports nothing heavy.
"""
import os
import subprocess
import sys
import warnings

# The lines dropped from descriptor 2; everything else passes.
NOISE_LINES = (
    r"Unable to register (cuDNN|cuFFT|cuBLAS) factory: Attempting to register factory",
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    # The TFLite converter, on options TensorFlow itself passes it.
    r"tf_tfl_flatbuffer_helpers\.cc:\d+\] Ignored (output_format|drop_control_dependency)\.$",
)
# Modules whose FutureWarnings are dropped (regular expression on the module name).
NOISY_WARNING_MODULES = r"google\."

# The filter process: stdlib only, started with -I -S (no site packages to load).
# It ignores SIGINT so that Ctrl-C still lets the entry point's own last words out.
_FILTER = """
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
noise = re.compile(sys.argv[1].encode())
out = sys.stdout.buffer
for line in iter(sys.stdin.buffer.readline, b""):
  if not noise.search(line):
    out.write(line)
    out.flush()
"""
_filtering = False


def quiet_startup() -> None:
  """Drops the start-up noise for the rest of this process (once)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  warnings.filterwarnings("ignore", category=FutureWarning, module=NOISY_WARNING_MODULES)
  global _filtering  # pylint: disable=global-statement
  if _filtering:
    return
  sys.stderr.flush()
  try:
    terminal = os.dup(2)
  except OSError:  # No descriptor 2: nothing to filter.
    return
  try:
    noise_filter = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _FILTER, "|".join(NOISE_LINES)],
        stdin=subprocess.PIPE, stdout=terminal, stderr=terminal, close_fds=True)
  except OSError:  # No filter: the noise stays, nothing is lost.
    os.close(terminal)
    return
  os.dup2(noise_filter.stdin.fileno(), 2)
  noise_filter.stdin.close()
  os.close(terminal)
  # Not waited for: it ends when every writer of descriptor 2 (this process,
  # its children) has closed it, after this process has exited.
  _filtering = True
