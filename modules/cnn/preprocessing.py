"""tf.Transform preprocessing for the CNN family.

Pixels arrive as 784 int64 values in 0..255; the model wants a float image in
[0, 1] shaped [28, 28, 1]. The scaling is a constant (not a dataset statistic)
so the same graph serves any single image.
"""
import tensorflow as tf

from modules.cnn import features


def preprocessing_fn(inputs):
  """Scales and reshapes the image; passes the label through as int64."""
  pixels = tf.cast(inputs[features.IMAGE_KEY], tf.float32) / features.MAX_PIXEL_VALUE
  image = tf.reshape(pixels, [-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1])
  return {
      features.transformed_name(features.IMAGE_KEY): image,
      features.LABEL_KEY: tf.cast(inputs[features.LABEL_KEY], tf.int64),
  }
