"""What a run on a new span continues training from: the served model.

A model trained on spans 1-4 that is served when span 5 arrives already
knows most of what the window 2-5 holds; the Trainer starts from its weights
(TFX's `base_model`, `fn_args.base_model`) and trains fewer steps. Which
model that is must not depend on the run itself: a re-run of span 5 has to
start from the same weights (or the re-run would train anew and might push),
so the base is the newest completely pushed version whose push record says
it was trained on a span older than the run's (components/atomic_pusher.py).
A re-run of a span then resolves the same base, and the Trainer is cached.

`WarmStartModel` is a container component, not a resolver, so the Kubeflow
target (which runs no resolvers) warm-starts the same way. With data that
does not come in spans, or nothing served from an older span, it emits an
empty artifact (`found` = 0) and the Trainer trains from scratch.
"""
from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components import atomic_pusher, push_records
from components.served_baseline import FOUND_KEY, SERVED_VERSION_KEY, emit_served_version
from components.span_example_gen import WINDOW_SPANS_PROPERTY

# The task's id in the pipeline (and the run summary's key for it).
NODE_ID = "warm_start"
# Besides served_baseline's `found` and `served_version`: the span the base was trained on.
BASE_SPAN_KEY = "base_span"


@component
def WarmStartModel(  # pylint: disable=invalid-name
    serving_dir: Parameter[str],
    examples: InputArtifact[standard_artifacts.Examples],
    base_model: OutputArtifact[standard_artifacts.Model]) -> None:
  """Emits the served model of an older span than `examples`' as a Model."""
  if not examples.get_string_custom_property(WINDOW_SPANS_PROPERTY):
    logging.info("The data comes without spans: training from scratch")
    base_model.set_int_custom_property(FOUND_KEY, 0)
    return
  version, record = push_records.version_before_span(serving_dir, examples.span)
  if version is None:
    logging.info("Nothing under %s was trained on a span older than %d: training from "
                 "scratch", serving_dir, examples.span)
    base_model.set_int_custom_property(FOUND_KEY, 0)
    return
  emit_served_version(serving_dir, version, base_model)
  logging.info("Warm start from version %s under %s (trained on span %d)", version,
               serving_dir, record[atomic_pusher.SPAN_KEY])
  base_model.set_int_custom_property(BASE_SPAN_KEY, record[atomic_pusher.SPAN_KEY])
