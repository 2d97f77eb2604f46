"""The export directory `<tflite_dir>/<version>/`: written atomically, read back.

A version directory holds model.tflite, metadata.json and the adapter's
extra files. It is assembled in a hidden staging directory beside the
versions (same filesystem) and renamed into place, with the same staging,
claim and rename steps as the serving push (components/atomic_pusher.py):
an app or sync job never sees a half-written version, and an existing
version is never replaced (TFLite versions equal serving versions, which
are immutable).
"""
import json
import os
import shutil
import time
import uuid
from typing import Any, Dict

from components.atomic_pusher import STAGING_PREFIX
from components.atomic_pusher import publish_staged
from components.atomic_pusher import remove_stale_staging

MODEL_FILE = "model.tflite"
METADATA_FILE = "metadata.json"


def write_version(tflite_dir: str, version: str, model_bytes: bytes,
                  metadata: Dict[str, Any], extra_files: Dict[str, str]) -> str:
  """Publishes one complete version directory; returns its path.

  Raises FileExistsError when the version already exists; nothing is left
  behind when any step fails.
  """
  os.makedirs(tflite_dir, exist_ok=True)
  remove_stale_staging(tflite_dir, time.time())
  staging = os.path.join(tflite_dir, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
  os.makedirs(staging)
  try:
    with open(os.path.join(staging, MODEL_FILE), "wb") as f:
      f.write(model_bytes)
    for name, source in extra_files.items():
      shutil.copyfile(source, os.path.join(staging, name))
    with open(os.path.join(staging, METADATA_FILE), "w") as f:
      json.dump(metadata, f, indent=2, sort_keys=True)
    if not publish_staged(staging, tflite_dir, int(version)):
      raise FileExistsError(f"TFLite version {os.path.join(tflite_dir, version)} "
                            "already exists; versions are never replaced")
    return os.path.join(tflite_dir, version)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def read_metadata(version_dir: str) -> Dict[str, Any]:
  """metadata.json of an exported version."""
  with open(os.path.join(version_dir, METADATA_FILE)) as f:
    return json.load(f)
