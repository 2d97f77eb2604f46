"""Slice features: transformed features TFMA slices an evaluation on
(through `transform_features`), never fed to a model, named so that a
report reads them without a legend."""
from typing import Sequence

import tensorflow as tf


def named_buckets(values: tf.Tensor, boundaries: Sequence, names: Sequence[str]) -> tf.Tensor:
  """The name of each value's bucket: names[i] for values in
  [boundaries[i-1], boundaries[i]), one more name than boundaries."""
  if len(names) != len(boundaries) + 1:
    raise ValueError(f"{len(boundaries)} boundaries need {len(boundaries) + 1} names, "
                     f"got {len(names)}")
  index = tf.searchsorted(tf.constant(boundaries, values.dtype), values, side="right")
  return tf.gather(tf.constant(names), index)
