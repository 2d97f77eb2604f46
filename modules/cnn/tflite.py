"""TFLite adapter of the CNN family (referenced as `modules.cnn.tflite.ADAPTER`).

The TFLite model takes the transformed image (float [28, 28, 1] in [0, 1])
and returns class probabilities; an app scales the 784 raw pixels itself,
by the same constant as preprocessing.py (a constant, not a dataset
statistic, so the rule is fixed for every model version; modules/cnn/app_input.py).
"""
from typing import Any

import numpy as np
import tensorflow as tf

from modules.cnn import features
from modules.cnn.app_input import IMAGE_XF
from modules.cnn.model import exported_architecture, serve_transformed
from modules.common.contract import LABELS_FILE, Arrays, FamilyAdapter, TensorMeaning, Tensors


class CnnAdapter(FamilyAdapter):
  """Pixels in, probabilities out; quantised parity measured as accuracy."""
  inputs = (tf.TensorSpec([features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1], tf.float32,
                          name=IMAGE_XF),)
  quality_metric = "accuracy"
  preprocessing = {
      "raw_input": (f"'{features.IMAGE_KEY}': {features.NUM_PIXELS} int pixel values "
                    f"0..{int(features.MAX_PIXEL_VALUE)}, row-major "
                    f"{features.IMAGE_HEIGHT}x{features.IMAGE_WIDTH} grey digit"),
      "rule": (f"{IMAGE_XF} = float32(pixels) / {features.MAX_PIXEL_VALUE}, reshaped to "
               f"[batch, {features.IMAGE_HEIGHT}, {features.IMAGE_WIDTH}, 1]"),
  }
  app_input = "modules.cnn.app_input.prepare"

  title = "MNIST digit classifier (CNN)"
  description = (
      f"Recognises one handwritten digit in a {features.IMAGE_HEIGHT}x{features.IMAGE_WIDTH} "
      "greyscale image drawn as in MNIST: a white digit on a black background, roughly "
      "centred. Returns the probability of each digit 0-9; output index i is digit i.")
  license = ("Code: Apache-2.0. Weights trained on the default data, MNIST "
             "(Y. LeCun, C. Cortes, C. Burges), come under its CC BY-SA 3.0 licence.")
  tensor_meanings = {
      IMAGE_XF: TensorMeaning(
          description=(
              f"One digit image per row: {features.IMAGE_HEIGHT}x{features.IMAGE_WIDTH} "
              f"greyscale pixels, row-major, white strokes ({int(features.MAX_PIXEL_VALUE)}) "
              f"on a black background (0) as in MNIST, scaled to [0, 1] as "
              f"pixel / {features.MAX_PIXEL_VALUE}. Invert dark-on-light images first."),
          value_range=(0.0, 1.0),
          normalization=(0.0, features.MAX_PIXEL_VALUE),
          grayscale_image_size=(features.IMAGE_HEIGHT, features.IMAGE_WIDTH)),
      features.PROBABILITIES: TensorMeaning(
          description=(f"{features.NUM_CLASSES} probabilities per image, summing to 1: "
                       "index i is the probability that the image shows digit i "
                       f"(line i of {LABELS_FILE})."),
          value_range=(0.0, 1.0),
          axis_labels=tuple(str(digit) for digit in range(features.NUM_CLASSES))),
  }

  def model_for_conversion(self, saved_model: Any, saved_model_dir: str,
                           tft_output: Any) -> Any:
    """The Keras CNN rebuilt from this family's code as it was exported
    (quantization-aware or not), with the SavedModel's weights."""
    del saved_model, tft_output
    return exported_architecture(saved_model_dir)

  def outputs(self, model: Any, transformed: Tensors) -> Tensors:
    return {features.PROBABILITIES: serve_transformed(model, transformed)[features.PROBABILITIES]}

  def quality(self, eval_batch: Arrays, outputs: Arrays) -> float:
    labels = eval_batch[features.LABEL_KEY].reshape(-1)
    return float(np.mean(np.argmax(outputs[features.PROBABILITIES], axis=-1) == labels))


ADAPTER = CnnAdapter()
