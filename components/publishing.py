"""Publishing numbered version directories that readers can trust, on a local
disk and on an object store alike.

The serving push (AtomicPusher) and the TFLite export both publish
`<base>/<version>/`. Each version holds a **completion marker**, a small
file its writer names (the push record, metadata.json) and writes last:
readers (the served-baseline component, the re-push check, an app's sync
job) count a version only once its marker exists (`published_versions`).

- **Local filesystems**: the version is assembled, marker included, in a
  hidden staging directory beside the versions (same filesystem), then an
  exclusive claim file serialises writers racing for the same number and
  rename(2) makes it visible whole, or not at all.
- **Object stores** (`gs://`, `s3://`, any `scheme://`): a rename is a copy,
  so the version is assembled and checked in a local staging directory and
  then copied in an order that makes a partial copy unusable: every file but
  `last_files` first, then `last_files` (a SavedModel's saved_model.pb: TF
  Serving cannot load a version without it), then the marker. A writer killed
  part-way leaves a directory without a marker, which readers skip and the
  next version number passes over. Object stores offer no exclusive create
  through tf.io.gfile, so two writers must not publish to one base at once
  (one pipeline run per family at a time).

Version numbers: the current unix time, or one more than the newest existing
directory when that is not larger (two pushes in one second never collide).
"""
import errno
import os
import shutil
import tempfile
import time
import uuid
from typing import Any, Callable, List, Optional, Sequence, Tuple

from absl import logging

from components import storage
from components.uris import is_uri, join

STAGING_PREFIX = ".staging-"
CLAIM_PREFIX = ".claim-"
STALE_STAGING_SECONDS = 3600


def numeric_versions(base: str) -> List[int]:
  """Every numeric directory under `base`, published or not, ascending."""
  if not storage.isdir(base):
    return []
  return sorted(int(name.rstrip("/")) for name in storage.listdir(base)
                if name.rstrip("/").isdigit())


def published_versions(base: str, marker: str) -> List[int]:
  """The versions under `base` whose completion marker exists, ascending."""
  return [v for v in numeric_versions(base)
          if storage.exists(join(base, str(v), *marker.split("/")))]


def read_marker(base: str, version: int, marker: str) -> bytes:
  return storage.read_bytes(join(base, str(version), *marker.split("/")))


def remove_stale_staging(base_dir: str, now: float) -> None:
  """Removes local staging directories of writers killed over an hour ago."""
  for name in os.listdir(base_dir):
    path = os.path.join(base_dir, name)
    if not name.startswith(STAGING_PREFIX):
      continue
    try:
      modified = os.path.getmtime(path)
    except FileNotFoundError:  # A concurrent writer published it since listdir.
      continue
    if now - modified > STALE_STAGING_SECONDS:
      logging.warning("Removing staging directory of an interrupted publish: %s", path)
      shutil.rmtree(path, ignore_errors=True)


def publish_staged(staging: str, base_dir: str, version: int) -> bool:
  """Renames local `staging` to `<base_dir>/<version>` unless that version is taken.

  An exclusive claim file serialises writers racing for the same number, and
  rename(2) refuses to replace a non-empty version directory, so no version
  is ever visible empty, partial or overwritten.
  """
  claim = os.path.join(base_dir, f"{CLAIM_PREFIX}{version}")
  try:
    descriptor = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
  except FileExistsError:
    return False
  try:
    final = os.path.join(base_dir, str(version))
    if os.path.exists(final):
      return False
    os.rename(staging, final)
    return True
  except OSError as error:
    if error.errno in (errno.ENOTEMPTY, errno.EEXIST):  # Taken meanwhile.
      return False
    raise
  finally:
    os.close(descriptor)
    os.remove(claim)


def _next_version(base: str, clock: Callable[[], float]) -> int:
  existing = numeric_versions(base)
  return max(int(clock()), existing[-1] + 1 if existing else 0)


def _relative_files(root: str) -> List[str]:
  """Files under local `root`, as '/'-separated relative paths, sorted."""
  found = []
  for directory, _, files in os.walk(root):
    for name in files:
      found.append(os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/"))
  return sorted(found)


def _copy_in_order(staging: str, final: str, marker: str, last_files: Sequence[str]) -> None:
  """Copies local `staging` to object-store `final`: other files, then
  `last_files`, then the marker."""
  files = _relative_files(staging)
  ordered = ([f for f in files if f != marker and f not in last_files]
             + [f for f in last_files if f in files] + [marker])
  for relative in ordered:
    target = join(final, *relative.split("/"))
    storage.makedirs(target.rsplit("/", 1)[0])
    storage.copy_with_object_store(os.path.join(staging, *relative.split("/")), target)


def publish(assemble: Callable[[str], None], base: str, marker: str,
            marker_content: bytes, *, version: Optional[int] = None,
            verify: Callable[[str], Any] = lambda staged: None,
            last_files: Sequence[str] = (),
            clock: Callable[[], float] = time.time) -> Tuple[str, str]:
  """Publishes one version; returns (version, its path).

  Args:
    assemble: writes the version's content (not the marker) into the local
      directory it is given.
    base: the versions' parent: a local directory or an object-store URI.
    marker: the completion marker's path inside a version ('/'-separated).
    marker_content: the marker's bytes (a record of what was published).
    version: the number to publish under (FileExistsError when taken); None:
      the next free number by the clock.
    verify: checks the assembled version before anything is visible.
    last_files: object stores: files copied after all others, before the marker.
    clock: the time, for version numbers and stale staging.
  Nothing is left visible (and no marker written) when any step fails.
  """
  if is_uri(base):
    storage.makedirs(base)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX)
  else:
    os.makedirs(base, exist_ok=True)
    remove_stale_staging(base, clock())
    staging = os.path.join(base, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
    os.makedirs(staging)
  try:
    assemble(staging)
    verify(staging)
    marker_path = os.path.join(staging, *marker.split("/"))
    os.makedirs(os.path.dirname(marker_path), exist_ok=True)
    with open(marker_path, "wb") as f:
      f.write(marker_content)
    while True:
      number = version if version is not None else _next_version(base, clock)
      final = join(base, str(number))
      if is_uri(base):
        if storage.exists(final):
          published = False
        else:
          _copy_in_order(staging, final, marker, last_files)
          published = True
      else:
        published = publish_staged(staging, base, number)
      if published:
        return str(number), final
      if version is not None:
        raise FileExistsError(f"version {final} already exists; versions are never replaced")
  finally:
    shutil.rmtree(staging, ignore_errors=True)
