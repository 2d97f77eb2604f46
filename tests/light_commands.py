"""Runs a read-only command as a user does, and says what heavy packages it loaded.

`runners.review` and the TFLite prediction CLI answer in well under a second
only while they import no TensorFlow, TFMA or TFX (whose imports alone take
seconds and close to 1 GB): a command is run in a fresh interpreter, exactly
as `python -m MODULE ARGS` would run it, and reports the heavy packages in
its `sys.modules` when it exits.
"""
import json
import os
import subprocess
import sys
import tempfile
from typing import List, Tuple

from tests.e2e_helpers import REPO_ROOT

HEAVY_PACKAGES = ("tensorflow", "tensorflow_model_analysis", "tfx", "tf_keras",
                  "tensorflow_transform", "apache_beam", "matplotlib")
# `python -m MODULE ARGS`, writing the heavy packages loaded to a file at exit.
_RUN_AND_REPORT = """
import atexit, json, runpy, sys
report_path, module, heavy = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
def report():
  with open(report_path, "w") as f:
    json.dump(sorted(name for name in heavy if name in sys.modules), f)
atexit.register(report)
sys.argv = [module, *sys.argv[4:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run(module: str, args: List[str]) -> Tuple[subprocess.CompletedProcess, List[str]]:
  """(the finished `python -m module args`, the HEAVY_PACKAGES it had loaded)."""
  with tempfile.TemporaryDirectory() as scratch:
    report_path = os.path.join(scratch, "loaded.json")
    result = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT, report_path, module, ",".join(HEAVY_PACKAGES),
         *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300)
    with open(report_path, encoding="utf-8") as f:
      return result, json.load(f)
