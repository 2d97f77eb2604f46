"""How an app feeds the CNN's TFLite model: the raw-input rule of metadata.json, in numpy.

No TensorFlow: the prediction CLI (components/tflite_exporter/predict.py)
and any Python app run it beside LiteRT alone. The scale is a constant, not
a dataset statistic, so the rule is the same for every model version.
"""
from typing import Any, Dict, List

import numpy as np

from modules.cnn import features

IMAGE_XF = features.transformed_name(features.IMAGE_KEY)


def prepare(instances: List[Dict[str, Any]], model_dir: str) -> Dict[str, np.ndarray]:
  """784 raw pixels 0..255 per instance -> the float [batch, 28, 28, 1] image in [0, 1]."""
  del model_dir  # The rule needs no shipped file.
  pixels = np.asarray([instance[features.IMAGE_KEY] for instance in instances],
                      dtype=np.float32)
  if pixels.ndim != 2 or pixels.shape[1] != features.NUM_PIXELS:
    raise ValueError(f"each instance needs {features.NUM_PIXELS} pixel values, "
                     f"got shape {pixels.shape[1:]}")
  if pixels.min() < 0 or pixels.max() > features.MAX_PIXEL_VALUE:
    raise ValueError(f"pixel values must lie in 0..{int(features.MAX_PIXEL_VALUE)}")
  image = pixels / features.MAX_PIXEL_VALUE
  return {IMAGE_XF: image.reshape(-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1)}
