"""A task for tests/test_task_forkserver.py: records what process it ran in.

    python -m tests.forkserver_task OUTPUT_JSON EXIT_CODE

`import_runtime` stands for an entrypoint's heavy imports: it imports a
module nothing else here imports, so a task can tell it was preloaded.
"""
import json
import os
import sys

PRELOADED = "wave"


def import_runtime() -> None:
  __import__(PRELOADED)


if __name__ == "__main__":
  output, exit_code = sys.argv[1], int(sys.argv[2])
  with open(output, "w", encoding="utf-8") as f:
    json.dump({"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(),
               "argv": sys.argv[1:], "marker": os.environ.get("TASK_MARKER"),
               "preloaded": PRELOADED in sys.modules}, f)
  print(f"task {os.getpid()} on stdout")
  print(f"task {os.getpid()} on stderr", file=sys.stderr)
  sys.exit(exit_code)
