"""How an app feeds the LSTM's TFLite model: the raw-input rule of metadata.json, in numpy.

No TensorFlow: the prediction CLI (components/tflite_exporter/predict.py)
and any Python app run it beside LiteRT alone. The character vocabulary
ships next to the model as VOCABULARY_FILE; the n-gram hashing happens
inside the model, so the character ids are its only input.
"""
import os
from typing import Any, Dict, List

import numpy as np

from modules.common.contract import read_vocabulary
from modules.lstm import features

IDS_XF = features.transformed_name(features.TEXT_KEY)
VOCABULARY_FILE = "vocab.txt"


def prepare(instances: List[Dict[str, Any]], model_dir: str) -> Dict[str, np.ndarray]:
  """Text (a JSON string, so already decoded) -> padded character ids."""
  vocabulary = read_vocabulary(os.path.join(model_dir, VOCABULARY_FILE))
  oov_id = len(vocabulary) + 1
  ids = np.full([len(instances), features.SEQUENCE_LENGTH], features.PADDING_ID, np.int64)
  for row, instance in enumerate(instances):
    chars = instance[features.TEXT_KEY][:features.SEQUENCE_LENGTH]
    ids[row, :len(chars)] = [vocabulary[c] + 1 if c in vocabulary else oov_id for c in chars]
  return {IDS_XF: ids}
