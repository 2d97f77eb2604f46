"""Pusher executor that makes a model version visible only once it is whole.

TFX's Pusher copies straight into `<base>/<unix_seconds>/`: TF Serving can
see a half-copied version, and two pushes in the same second collide (the
second is skipped yet recorded as pushed). This executor, for local
filesystems:
  1. copies the model into a hidden staging directory beside the versions
     (same filesystem, so the final rename is atomic; TF Serving ignores
     non-numeric directory names),
  2. loads the staged copy and replays its TF Serving warmup requests,
  3. renames it (claiming the number first) to a fresh numeric version: the current unix time, or one
     more than the newest existing version when that is not larger.
Staging directories left by a killed push are removed on the next push.
On object stores (gs://, s3://), where renames are not atomic, it falls back
to TFX's copy-with-saved_model.pb-last.
"""
import errno
import os
import shutil
import time
import uuid
from typing import Any, Callable, Dict, List, Tuple

from absl import logging
from tfx import types
from tfx.components.pusher import component as tfx_pusher_component
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from modules.common import warmup

STAGING_PREFIX = ".staging-"
CLAIM_PREFIX = ".claim-"
STALE_STAGING_SECONDS = 3600


def numeric_versions(base_dir: str) -> List[int]:
  if not os.path.isdir(base_dir):
    return []
  return sorted(int(name) for name in os.listdir(base_dir) if name.isdigit())


def remove_stale_staging(base_dir: str, now: float) -> None:
  for name in os.listdir(base_dir):
    path = os.path.join(base_dir, name)
    if not name.startswith(STAGING_PREFIX):
      continue
    try:
      modified = os.path.getmtime(path)
    except FileNotFoundError:  # A concurrent push published it since listdir.
      continue
    if now - modified > STALE_STAGING_SECONDS:
      logging.warning("Removing staging directory of an interrupted push: %s", path)
      shutil.rmtree(path, ignore_errors=True)


def publish_staged(staging: str, base_dir: str, version: int) -> bool:
  """Renames `staging` to `<base_dir>/<version>` unless that version is taken.

  An exclusive claim file serialises pushers racing for the same number, and
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


def push_atomically(model_path: str, base_dir: str,
                    verify: Callable[[str], Any] = warmup.replay,
                    clock: Callable[[], float] = time.time) -> Tuple[str, str]:
  """Stages, verifies and publishes `model_path`; returns (version, path)."""
  os.makedirs(base_dir, exist_ok=True)
  remove_stale_staging(base_dir, clock())
  staging = os.path.join(base_dir, f"{STAGING_PREFIX}{uuid.uuid4().hex}")
  try:
    shutil.copytree(model_path, staging)
    verify(staging)
    while True:
      existing = numeric_versions(base_dir)
      version = max(int(clock()), existing[-1] + 1 if existing else 0)
      if publish_staged(staging, base_dir, version):
        return str(version), os.path.join(base_dir, str(version))
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _copy_saved_model_last(model_path: str, base_dir: str, clock) -> Tuple[str, str]:
  """TFX's non-atomic push for object stores: saved_model.pb copied last."""
  version = str(int(clock()))
  final = os.path.join(base_dir, version)
  io_utils.copy_dir(model_path, final, deny_regex_patterns=[r"saved_model\.pb"])
  io_utils.copy_file(os.path.join(model_path, "saved_model.pb"),
                     os.path.join(final, "saved_model.pb"))
  return version, final


class AtomicPusherExecutor(tfx_pusher_executor.Executor):
  """TFX Pusher semantics (blessing check, PushedModel properties), atomic push."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    model_path = self.GetModelPath(input_dict)
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
    base_dir = destination.filesystem.base_directory
    if "://" in base_dir:
      version, final = _copy_saved_model_last(model_path, base_dir, time.time)
    else:
      version, final = push_atomically(model_path, base_dir)
    logging.info("Model pushed to %s", final)
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=final, pushed_version=version)


class AtomicPusher(tfx_pusher_component.Pusher):
  """TFX's Pusher component with the atomic executor."""
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPusherExecutor)
