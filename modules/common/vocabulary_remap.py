"""Warm start across vocabularies: a new model starts from the served model's
weights, with every vocabulary-indexed row moved to where its key now is.

Transform recomputes its vocabularies on every window of spans: a new span
brings new users, items or characters, and a known key can move to another
index (vocabularies are ordered by frequency). Copying an embedding table
row for row would give a user another user's vector, silently. So a family
names the weights whose rows a vocabulary indexes (`VocabularyRows`); for
those, row i of the new table is the old row of the key the new vocabulary
holds at i, or (a key the served model never saw) the new model's own
initial row. Rows before the vocabulary (padding) and after it (OOV buckets,
whose hashing does not depend on the vocabulary) are carried over as they are.
Every other weight must have kept its shape, or this raises, naming it: a
warm start never goes ahead half-aligned (train with --cold-start instead).

The served model is the SavedModel the Trainer saved (modules/common/
training.export_serving_model): its checkpoint's root is the Keras model,
so its keys are those of the new model's own checkpoint, and its `assets/`
hold the Transform vocabularies it was trained with.
"""
import dataclasses
import os
import tempfile
from typing import Dict, List, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras

_OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
# Checkpoint objects that hold no model weights, at the root or in a nested
# (compiled) model.
_NOT_WEIGHTS = frozenset(("save_counter", "optimizer"))


@dataclasses.dataclass(frozen=True)
class VocabularyRows:
  """A weight whose rows a Transform vocabulary indexes: `offset` rows
  before the vocabulary's (padding), one per entry, then `tail` rows (OOV
  buckets). `key_prefix` begins its checkpoint key (the attribute path of
  the layer holding it, e.g. "item_embedding/" or "layer_with_weights-0/")."""
  key_prefix: str
  vocabulary: str
  offset: int = 0
  tail: int = 1


def read_vocabulary(path: str) -> List[bytes]:
  """A Transform vocabulary file: one entry per line, most frequent first."""
  with tf.io.gfile.GFile(path, "rb") as f:
    return [line.rstrip(b"\n") for line in f]


def saved_vocabulary(saved_model_dir: str, name: str) -> List[bytes]:
  """The vocabulary `name` a SavedModel with the Transform layer carries."""
  return read_vocabulary(os.path.join(saved_model_dir, "assets", name))


def remap_rows(old: np.ndarray, fresh: np.ndarray, old_keys: Sequence[bytes],
               new_keys: Sequence[bytes], offset: int, tail: int) -> np.ndarray:
  """`fresh` (the new table) with the old row of every key both
  vocabularies hold, and the old padding and OOV rows."""
  if old.shape[0] != offset + len(old_keys) + tail or (
      fresh.shape[0] != offset + len(new_keys) + tail):
    raise ValueError(f"a table of {old.shape[0]} rows (now {fresh.shape[0]}) is not "
                     f"{offset} + vocabulary ({len(old_keys)}, now {len(new_keys)}) + {tail}")
  remapped = fresh.copy()
  remapped[:offset] = old[:offset]
  if tail:
    remapped[-tail:] = old[-tail:]
  old_index = {key: index for index, key in enumerate(old_keys)}
  for index, key in enumerate(new_keys):
    if key in old_index:
      remapped[offset + index] = old[offset + old_index[key]]
  return remapped


def restore_remapped(model: tf_keras.Model, base_saved_model: str,
                     new_vocabularies: Dict[str, Sequence[bytes]],
                     indexed: Sequence[VocabularyRows]) -> Dict[str, int]:
  """Loads the weights of `base_saved_model` into `model` (built: its
  variables exist), remapping `indexed` weights by key; returns, per
  vocabulary, how many of its entries the served model did not know."""
  base = tf.train.load_checkpoint(os.path.join(base_saved_model, "variables", "variables"))
  old_vocabularies = {rows.vocabulary: saved_vocabulary(base_saved_model, rows.vocabulary)
                      for rows in indexed}
  with tempfile.TemporaryDirectory() as work_dir:
    fresh_prefix = os.path.join(work_dir, "fresh", "weights")
    model.save_weights(fresh_prefix)
    fresh = tf.train.load_checkpoint(fresh_prefix)
    names, values = [], []
    for key in sorted(fresh.get_variable_to_shape_map()):
      value = fresh.get_tensor(key)
      if key != _OBJECT_GRAPH and not _NOT_WEIGHTS.intersection(key.split("/")):
        value = _warm_value(key, value, base, old_vocabularies, new_vocabularies, indexed)
      names.append(key)
      values.append(tf.constant(value))
    warm_prefix = os.path.join(work_dir, "warm", "weights")
    tf.io.gfile.makedirs(os.path.dirname(warm_prefix))
    tf.raw_ops.SaveV2(prefix=warm_prefix, tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=values)
    model.load_weights(warm_prefix).assert_existing_objects_matched()
  unknown = {name: len(set(new_vocabularies[name]) - set(old))
             for name, old in old_vocabularies.items()}
  logging.info("Warm start from %s; entries the served model did not know, by vocabulary: %s",
               base_saved_model, unknown)
  return unknown


def _warm_value(key: str, fresh: np.ndarray, base, old_vocabularies,
                new_vocabularies, indexed: Sequence[VocabularyRows]) -> np.ndarray:
  if not base.has_tensor(key):
    raise ValueError(f"the served model has no weight {key}: it was built by other code; "
                     "train with --cold-start")
  old = base.get_tensor(key)
  rows = next((r for r in indexed if key.startswith(r.key_prefix)), None)
  if rows is not None:
    return remap_rows(old, fresh, old_vocabularies[rows.vocabulary],
                      new_vocabularies[rows.vocabulary], rows.offset, rows.tail)
  if old.shape != fresh.shape:
    raise ValueError(f"weight {key} has shape {list(old.shape)} in the served model and "
                     f"{list(fresh.shape)} now, and no vocabulary indexes it; train with "
                     "--cold-start")
  return old
