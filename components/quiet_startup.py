"""Keeps an entry point's terminal for progress and real errors.

Importing TensorFlow and the Google client libraries prints ~30 lines that
nobody running this project can act on, before any progress:

- FutureWarnings of google.* libraries about this Python version and the
  pinned google-cloud-storage, one per client package;
- "Unable to register cuDNN/cuFFT/cuBLAS factory" lines, which TensorFlow's
  C++ code writes straight to file descriptor 2 at ERROR level, so
  TF_CPP_MIN_LOG_LEVEL cannot drop them without also dropping real C++ errors;
  likewise the TFLite converter's "Ignored output_format." warnings about
  options TensorFlow itself passes it, and LiteRT's INFO line that it
  created its default CPU delegate, which no level setting turns off.

`quiet_startup()` keeps exactly those off the terminal: the C++ lines
through a small filter process that stands between descriptor 2 and the
terminal and passes every other line through unchanged, the warnings
rewritten as one line the filter recognises. A process, not a thread: when
the entry point dies (a C++ CHECK failure aborts it), the filter still
forwards every line it wrote before.

Nothing is lost: the filter holds what it keeps off the terminal until the
entry point names its run's log file (`send_hidden_lines_to`), then appends
it there, and every later hidden line as it comes. An entry point with a
log file leaves TF_CPP_MIN_LOG_LEVEL alone, so TensorFlow's C++ INFO and
WARNING lines are written and land in it too; one without (compiling a
spec, a review) sets it to 2 before importing TensorFlow. Python logging is
left to the entry point (the local runner sends it to the same file).

Call it first in an entry point's `__main__` block, before TensorFlow is
imported; importing this module imports nothing heavy.
"""
import os
import re
import subprocess
import sys
import warnings

# The lines kept off the terminal (descriptor 2); everything else passes.
HIDDEN_LINES = (
    r"Unable to register (cuDNN|cuFFT|cuBLAS) factory: Attempting to register factory",
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    # The TFLite converter, on options TensorFlow itself passes it.
    r"tf_tfl_flatbuffer_helpers\.cc:\d+\] Ignored (output_format|drop_control_dependency)\.$",
    # TensorFlow's C++ INFO and WARNING lines, in both its formats, and the
    # second line of its CPU-feature notice.
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] ",
    r"^[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ",
    r"^To enable the following instructions: .*rebuild TensorFlow",
    # LiteRT's notice that it runs float ops on its default CPU delegate.
    r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$",
)
# Modules whose FutureWarnings are kept off the terminal (a regular
# expression on the file that warns), and the prefix of the one line each
# becomes on descriptor 2.
NOISY_WARNING_FILES = r"[/\\]google[/\\]"
HIDDEN_WARNING_PREFIX = "quiet_startup: hidden warning: "
# A line on descriptor 2 starting with this names the log file (the rest of
# the line); the filter does not pass it on.
_LOG_FILE_CONTROL = "\x1equiet_startup log file: "
# Hidden lines held before a log file is named, at most.
_MAX_HELD_LINES = 20000

# The filter process: stdlib only, started with -I -S (no site packages to load).
# It ignores SIGINT so that Ctrl-C still lets the entry point's own last words out.
_FILTER = """
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
hidden = re.compile(sys.argv[1].encode())
control = sys.argv[2].encode()
max_held = int(sys.argv[3])
out = sys.stdout.buffer
held, log = [], None
for line in iter(sys.stdin.buffer.readline, b""):
  if line.startswith(control):
    log = open(line[len(control):].rstrip(b"\\n"), "ab", buffering=0)
    log.write(b"".join(held))
    held = []
  elif not hidden.search(line):
    out.write(line)
    out.flush()
  elif log is not None:
    log.write(line)
  elif len(held) < max_held:
    held.append(line)
"""
_filtering = False


def _show_warning(show):
  """warnings.showwarning, with the noisy modules' FutureWarnings as one
  hidden line on descriptor 2 instead."""
  noisy = re.compile(NOISY_WARNING_FILES)

  def show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, FutureWarning) and noisy.search(filename) and file is None:
      text = str(message).replace("\n", " ")
      os.write(2, f"{HIDDEN_WARNING_PREFIX}{filename}:{lineno}: FutureWarning: {text}\n"
               .encode("utf-8", "replace"))
      return
    show(message, category, filename, lineno, file, line)
  return show_warning


def quiet_startup() -> None:
  """Keeps the start-up noise off the terminal for the rest of this process (once)."""
  global _filtering  # pylint: disable=global-statement
  if _filtering:
    return
  sys.stderr.flush()
  try:
    terminal = os.dup(2)
  except OSError:  # No descriptor 2: nothing to filter.
    return
  hidden = "|".join([*HIDDEN_LINES, "^" + re.escape(HIDDEN_WARNING_PREFIX)])
  try:
    noise_filter = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _FILTER, hidden, _LOG_FILE_CONTROL,
         str(_MAX_HELD_LINES)],
        stdin=subprocess.PIPE, stdout=terminal, stderr=terminal, close_fds=True)
  except OSError:  # No filter: the noise stays, nothing is lost.
    os.close(terminal)
    return
  os.dup2(noise_filter.stdin.fileno(), 2)
  noise_filter.stdin.close()
  os.close(terminal)
  warnings.showwarning = _show_warning(warnings.showwarning)
  # Not waited for: it ends when every writer of descriptor 2 (this process,
  # its children) has closed it, after this process has exited.
  _filtering = True


def send_hidden_lines_to(log_path: str) -> None:
  """From now on, what quiet_startup keeps off the terminal is appended to
  `log_path`, starting with what it has held so far (nothing happens
  without quiet_startup)."""
  if not _filtering:
    return
  sys.stderr.flush()
  os.write(2, f"{_LOG_FILE_CONTROL}{os.path.abspath(log_path)}\n".encode())
