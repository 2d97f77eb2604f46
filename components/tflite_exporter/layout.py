"""The export directory `<tflite_dir>/<version>/`: published whole, read back.

A version directory holds model.tflite, the adapter's extra files, any
labels.txt and metadata.json, which is written last and marks the version
complete. It is published with the same protocol as the serving push
(components/publishing.py): atomically by rename on a local disk, by an
ordered copy ending with metadata.json on an object store (gs://, s3://).
An app or sync job that reads only versions with a metadata.json never sees
a half-written one, and an existing version is never replaced (TFLite
versions equal serving versions, which are immutable).
"""
import json
import os
import shutil
from typing import Any, Dict, List, Optional

from components import publishing, storage, uris

MODEL_FILE = "model.tflite"
METADATA_FILE = "metadata.json"
# metadata.json's dotted name of the TF-free function that prepares raw
# input (FamilyAdapter.app_input), which the prediction CLI and apps call.
APP_INPUT_KEY = "app_input"


def write_version(tflite_dir: str, version: str, model_bytes: bytes,
                  metadata: Dict[str, Any], extra_files: Dict[str, str], *,
                  contents: Optional[Dict[str, bytes]] = None) -> str:
  """Publishes one complete version directory; returns its path.

  `extra_files` are copied from their source paths, `contents` ({file name:
  bytes}, such as labels.txt) written as given. Raises FileExistsError when
  the version already exists; nothing is left visible when any step fails.
  """
  def assemble(staging: str) -> None:
    with open(os.path.join(staging, MODEL_FILE), "wb") as f:
      f.write(model_bytes)
    for name, content in (contents or {}).items():
      with open(os.path.join(staging, name), "wb") as f:
        f.write(content)
    for name, source in extra_files.items():
      if uris.is_uri(source):  # A Transform output on an object store.
        storage.copy_with_object_store(source, os.path.join(staging, name), overwrite=True)
      else:
        shutil.copyfile(source, os.path.join(staging, name))

  _, path = publishing.publish(
      assemble, tflite_dir, METADATA_FILE,
      json.dumps(metadata, indent=2, sort_keys=True).encode("utf-8"), version=int(version))
  return path


def published_versions(tflite_dir: str) -> List[int]:
  """The complete versions under `tflite_dir` (those with metadata.json)."""
  return publishing.published_versions(tflite_dir, METADATA_FILE)


def read_metadata(version_dir: str) -> Dict[str, Any]:
  """metadata.json of an exported version (a local path or a URI)."""
  return json.loads(storage.read_text(uris.join(version_dir, METADATA_FILE)))
