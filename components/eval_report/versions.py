"""Which served version a model is, and what the Pusher did with a candidate.

A reviewer thinks in served versions (`serving/<family>/<N>/`), MLMD in model
artifacts: this module joins them through the push record every complete
version carries (components/atomic_pusher.py) and the PushedModel's custom
properties. The report, the review CLI and its history all name versions
through it, so they cannot disagree about which version a model is. It
imports no TensorFlow (components/storage.py), for the review CLI.
"""
import json
from typing import Dict, Optional, Tuple

from components import push_records, storage, uris
from components.push_records import PUSH_RECORD

# Custom properties TFX's Pusher sets on its PushedModel output.
PUSHED_KEY = "pushed"
PUSHED_VERSION_KEY = "pushed_version"
PUSHED_DESTINATION_KEY = "pushed_destination"
NOT_BLESSED_REASON = "the model was not blessed"


def versions_by_model(serving_dir: str) -> Dict[str, str]:
  """{model artifact URI: served version} of every complete version under
  `serving_dir` (a later push of the same model wins)."""
  found: Dict[str, str] = {}
  if not serving_dir:
    return found
  for version, record in push_records.published_records(serving_dir):  # newest first
    if record.get("model_uri"):
      found.setdefault(record["model_uri"], str(version))
  return found


def served(serving_dir: str) -> Tuple[Optional[str], Optional[str]]:
  """(version, model artifact URI) of the version served now: the newest
  complete one; (None, None) when nothing is served."""
  version, record = push_records.served_record(serving_dir) if serving_dir else (None, None)
  if version is None:
    return None, None
  return str(version), record.get("model_uri")


def evaluated_model_uri(evaluated_location: Optional[str],
                        artifact_uri: Optional[str]) -> Optional[str]:
  """The model artifact a baseline was: a served-baseline copy carries its
  version's push record (naming the model); a resolved baseline is the model
  artifact itself."""
  if evaluated_location:
    record = uris.join(evaluated_location, *PUSH_RECORD.split("/"))
    if storage.exists(record):
      return json.loads(storage.read_text(record)).get("model_uri") or artifact_uri
  return artifact_uri


def push_outcome(pushed: bool, version: str, destination: str, reason: str) -> dict:
  """The report's account of one Pusher run on the candidate."""
  if pushed:
    return {"pushed": True, "version": version or None, "destination": destination or None,
            "reason": None}
  return {"pushed": False, "version": None, "destination": None,
          "reason": reason or NOT_BLESSED_REASON}

