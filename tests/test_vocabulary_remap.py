"""Warm start across vocabularies (modules/common/vocabulary_remap.py), on a
small Keras model saved as the Trainer saves one: rows follow their keys,
padding and OOV rows are carried, and a weight that changed shape for no
vocabulary is refused by name."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from modules.common import vocabulary_remap

VOCABULARY = "token_vocab"
# One padding row, the vocabulary, two OOV buckets (as the LSTM's char ids).
ROWS = vocabulary_remap.VocabularyRows("layer_with_weights-0/", VOCABULARY, offset=1, tail=2)


def _model(vocabulary_size: int, hidden: int = 3, seed: int = 0) -> tf_keras.Model:
  tf_keras.utils.set_random_seed(seed)
  ids = tf_keras.Input([5], dtype=tf.int64)
  embedded = tf_keras.layers.Embedding(1 + vocabulary_size + 2, 4)(ids)
  pooled = tf_keras.layers.GlobalAveragePooling1D()(embedded)
  return tf_keras.Model(ids, tf_keras.layers.Dense(hidden)(pooled))


def _served(tmp_path, keys, **model_args):
  """A model saved with its vocabulary among the SavedModel's assets."""
  model = _model(len(keys), **model_args)
  export_dir = str(tmp_path / "served")
  model.save(export_dir, save_format="tf", include_optimizer=False)
  with open(os.path.join(export_dir, "assets", VOCABULARY), "wb") as f:
    f.write(b"".join(key + b"\n" for key in keys))
  return model, export_dir


def test_rows_follow_their_keys_and_padding_and_oov_rows_are_carried(tmp_path):
  old_keys, new_keys = [b"a", b"b", b"c"], [b"c", b"new", b"a", b"b"]
  served, export_dir = _served(tmp_path, old_keys)
  fresh = _model(len(new_keys), seed=1)
  fresh_table = fresh.layers[1].get_weights()[0].copy()
  unknown = vocabulary_remap.restore_remapped(fresh, export_dir, {VOCABULARY: new_keys}, [ROWS])
  assert unknown == {VOCABULARY: 1}
  old, new = served.layers[1].get_weights()[0], fresh.layers[1].get_weights()[0]
  np.testing.assert_array_equal(new[0], old[0])  # padding
  for key in old_keys:
    np.testing.assert_array_equal(new[1 + new_keys.index(key)], old[1 + old_keys.index(key)])
  np.testing.assert_array_equal(new[1 + new_keys.index(b"new")],
                                fresh_table[1 + new_keys.index(b"new")])
  np.testing.assert_array_equal(new[-2:], old[-2:])  # OOV buckets
  for served_weight, warm_weight in zip(served.layers[-1].get_weights(),
                                        fresh.layers[-1].get_weights()):
    np.testing.assert_array_equal(warm_weight, served_weight)


def test_same_size_vocabulary_in_another_order_is_still_remapped(tmp_path):
  served, export_dir = _served(tmp_path, [b"a", b"b"])
  fresh = _model(2, seed=1)
  vocabulary_remap.restore_remapped(fresh, export_dir, {VOCABULARY: [b"b", b"a"]}, [ROWS])
  old, new = served.layers[1].get_weights()[0], fresh.layers[1].get_weights()[0]
  np.testing.assert_array_equal(new[1], old[2])
  np.testing.assert_array_equal(new[2], old[1])


def test_a_weight_that_changed_shape_for_no_vocabulary_is_refused_by_name(tmp_path):
  _, export_dir = _served(tmp_path, [b"a"], hidden=3)
  with pytest.raises(ValueError, match=r"weight layer_with_weights-1/bias/\.ATTRIBUTES/"
                     r"VARIABLE_VALUE has shape \[3\] in the served model and \[5\] now, "
                     r"and no vocabulary indexes it; train with --cold-start"):
    vocabulary_remap.restore_remapped(_model(1, hidden=5), export_dir, {VOCABULARY: [b"a"]},
                                      [ROWS])
