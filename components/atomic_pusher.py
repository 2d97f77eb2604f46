"""Pusher executor that makes a model version visible only once it is whole.

TFX's Pusher copies straight into `<base>/<unix_seconds>/`: TF Serving can
see a half-copied version, and two pushes in the same second collide (the
second is skipped yet recorded as pushed). This executor
  1. copies the model into a staging directory (TF Serving ignores
     non-numeric directory names),
  2. loads the staged copy and replays its TF Serving warmup requests,
  3. publishes it as a fresh numeric version with a push record (which
     model and blessing it came from) as its completion marker: atomically
     by rename on a local disk, by an ordered copy on object stores
     (components/publishing.py).
A model that is already the newest pushed version (a re-run whose Trainer
was cached, or a baseline that is the candidate itself) is not pushed again.
Given the examples the model was trained and judged on, the record also
says which span and window of spans they were (components/spans.py), and
the version carries the statistics of its train split: what later runs
warm-start from and check their new span's data against.
"""
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from absl import logging
from tfx import types
from tfx.components.pusher import component as tfx_pusher_component
from tfx.components.pusher import executor as tfx_pusher_executor
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, component_spec, standard_artifacts, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components import publishing, push_records, uris
from components.span_example_gen import WINDOW_SPANS_PROPERTY
from modules.common import warmup
from modules.common.contract import TRAIN_SPLIT

# Written last into every pushed version: which model and blessing it came
# from. Its presence marks the version as complete (components/publishing.py).
PUSH_RECORD = push_records.PUSH_RECORD
SAVED_MODEL_FILE = "saved_model.pb"
EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY
STATISTICS_KEY = standard_component_specs.STATISTICS_KEY


# Push record keys naming the data of a model trained on spans.
SPAN_KEY = push_records.SPAN_KEY
WINDOW_SPANS_KEY = push_records.WINDOW_SPANS_KEY
TRAINING_STATISTICS = push_records.TRAINING_STATISTICS


def push_record(model: types.Artifact, blessing: Optional[types.Artifact],
                clock: Callable[[], float] = time.time,
                examples: Optional[types.Artifact] = None) -> Dict[str, Any]:
  """The record a pushed version carries of where it came from."""
  record = {"model_uri": model.uri, "model_id": model.id,
            "blessing_uri": blessing.uri if blessing else "",
            "pushed_at": int(clock())}
  window = (examples.get_string_custom_property(WINDOW_SPANS_PROPERTY)
            if examples is not None else "")
  if window:
    record.update({SPAN_KEY: examples.span, WINDOW_SPANS_KEY: json.loads(window),
                   "examples_uri": examples.uri})
  return record


def training_statistics_path(base_dir: str, version: int) -> str:
  """Where pushed `version` under `base_dir` keeps its train split's statistics."""
  return uris.join(base_dir, str(version), *TRAINING_STATISTICS.split("/"))


def push_atomically(model_path: str, base_dir: str,
                    verify: Callable[[str], Any] = warmup.replay,
                    clock: Callable[[], float] = time.time,
                    record: Optional[Dict[str, Any]] = None,
                    training_statistics: Optional[bytes] = None) -> Tuple[str, str]:
  """Stages, verifies and publishes `model_path` with its push record (and
  the serialized `training_statistics`, when given); returns (version, path)."""
  def assemble(staging: str) -> None:
    if uris.is_uri(model_path):
      io_utils.copy_dir(model_path, staging)
    else:
      shutil.copytree(model_path, staging, dirs_exist_ok=True)
    if training_statistics:
      target = os.path.join(staging, *TRAINING_STATISTICS.split("/"))
      os.makedirs(os.path.dirname(target), exist_ok=True)
      with open(target, "wb") as f:
        f.write(training_statistics)

  return publishing.publish(
      assemble, base_dir, PUSH_RECORD,
      json.dumps(record or {}, indent=2, sort_keys=True).encode("utf-8"),
      verify=verify, last_files=(SAVED_MODEL_FILE,), clock=clock)


class AtomicPusherExecutor(tfx_pusher_executor.Executor):
  """TFX Pusher semantics (blessing check, PushedModel properties), atomic
  push, and no second push of a model that is already the newest version."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
    blessings = input_dict.get(standard_component_specs.MODEL_BLESSING_KEY) or [None]
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
    base_dir = destination.filesystem.base_directory
    served_version, record = push_records.served_record(base_dir)
    if record and record.get("model_uri") == model.uri:
      reason = f"already served as version {served_version}"
      logging.info("Model %s not pushed: %s", model.uri, reason)
      self._MarkNotPushed(model_push)
      model_push.set_string_custom_property(push_records.NOT_PUSHED_REASON, reason)
      return
    model_path = self.GetModelPath(input_dict)
    examples = input_dict.get(EXAMPLES_KEY) or [None]
    record = push_record(model, blessings[0], examples=examples[0])
    statistics = input_dict.get(STATISTICS_KEY)
    version, final = push_atomically(
        model_path, base_dir, record=record,
        training_statistics=(
            stats_artifact_utils.load_statistics(statistics[0], TRAIN_SPLIT).proto()
            .SerializeToString() if statistics and SPAN_KEY in record else None))
    logging.info("Model pushed to %s", final)
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=final, pushed_version=version)


class AtomicPusherSpec(standard_component_specs.PusherSpec):
  """TFX's Pusher spec, and the examples the model was trained and judged on
  with their statistics."""
  INPUTS = {
      **standard_component_specs.PusherSpec.INPUTS,
      EXAMPLES_KEY: component_spec.ChannelParameter(type=standard_artifacts.Examples,
                                                    optional=True),
      STATISTICS_KEY: component_spec.ChannelParameter(
          type=standard_artifacts.ExampleStatistics, optional=True),
  }


class AtomicPusher(tfx_pusher_component.Pusher):
  """TFX's Pusher component with the atomic executor (and, optionally, the
  examples whose span its push record names, and their statistics, which a
  version trained on spans carries)."""
  SPEC_CLASS = AtomicPusherSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPusherExecutor)

  def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
               push_destination: pusher_pb2.PushDestination,
               examples: Optional[types.BaseChannel] = None,
               statistics: Optional[types.BaseChannel] = None):
    # pylint: disable=non-parent-init-called,super-init-not-called
    # Pusher.__init__ builds TFX's own spec class; this one adds the examples.
    spec = AtomicPusherSpec(
        model=model, model_blessing=model_blessing, push_destination=push_destination,
        examples=examples, statistics=statistics,
        pushed_model=types.Channel(type=standard_artifacts.PushedModel))
    base_component.BaseComponent.__init__(self, spec=spec)
