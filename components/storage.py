"""Files on a local disk or an object store, with TensorFlow loaded only for the latter.

The pipeline writes its versions, reports and markers to local directories
or to object stores (`gs://`, `s3://`), which only `tf.io.gfile` reaches.
Read-only commands (`runners.review`, the TFLite `predict` CLI) read the
same files, nearly always locally, and must answer in well under a second:
importing TensorFlow alone takes seconds and close to 1 GB. So a local path
is served by the standard library and `tf.io.gfile` is imported on the first
object-store path, with the same behaviour either way.
"""
import os
from typing import List

from components.uris import is_uri


def _gfile():
  """tf.io.gfile, imported on first use (an object-store path)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  return tf.io.gfile


def exists(path: str) -> bool:
  return _gfile().exists(path) if is_uri(path) else os.path.exists(path)


def isdir(path: str) -> bool:
  return _gfile().isdir(path) if is_uri(path) else os.path.isdir(path)


def listdir(path: str) -> List[str]:
  """Entry names in `path` (an object store may end directory names in "/")."""
  return _gfile().listdir(path) if is_uri(path) else os.listdir(path)


def makedirs(path: str) -> None:
  if is_uri(path):
    _gfile().makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def read_bytes(path: str) -> bytes:
  if is_uri(path):
    with _gfile().GFile(path, "rb") as f:
      return f.read()
  with open(path, "rb") as f:
    return f.read()


def read_text(path: str) -> str:
  return read_bytes(path).decode("utf-8")


def write_text(path: str, text: str) -> None:
  if is_uri(path):
    with _gfile().GFile(path, "w") as f:
      f.write(text)
  else:
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)


def copy_with_object_store(source: str, target: str, overwrite: bool = False) -> None:
  """Copies one file to or from an object store (local copies use shutil)."""
  _gfile().copy(source, target, overwrite=overwrite)
