"""How an app feeds the two-tower's TFLite model: the raw-input rule of metadata.json, in numpy.

No TensorFlow: the prediction CLI (components/tflite_exporter/predict.py)
and any Python app run it beside LiteRT alone. The model holds the whole
catalogue, so an app only maps its user id to the model's user index
through VOCABULARY_FILE, shipped next to the model.
"""
import os
from typing import Any, Dict, List

import numpy as np

from modules.common.contract import read_vocabulary
from modules.two_tower import features

USER_XF = features.transformed_name(features.USER_ID)
VOCABULARY_FILE = "user_vocab.txt"


def prepare(instances: List[Dict[str, Any]], model_dir: str) -> Dict[str, np.ndarray]:
  """User ids -> their line index in the vocabulary; an unknown user gets
  the number of lines (the model answers it with the most popular items)."""
  vocabulary = read_vocabulary(os.path.join(model_dir, VOCABULARY_FILE))
  unknown = len(vocabulary)
  return {USER_XF: np.array(
      [vocabulary.get(str(instance[features.USER_ID]), unknown) for instance in instances],
      dtype=np.int64)}
