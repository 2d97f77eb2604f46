"""TFLite adapter of the two-tower family (`modules.two_tower.tflite.ADAPTER`).

The TFLite model is the whole top-K recommender, not the query tower alone:
user vocabulary index in, the K best unseen item ids and their scores out,
exactly what `serving_default` returns for the raw user id: both run the
model's `recommend_for_index` function. The candidate embeddings, popularity
fallback and each user's features, history and seen items are constants
inside the model, so an app needs no item table or nearest-neighbour code of
its own; it only maps its user id to the index through user_vocab.txt, which
ships next to the model (rule in `preprocessing`, implemented by
modules/two_tower/app_input.py). The catalogue is frozen at training time,
as it is in the SavedModel.
"""
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules.common.contract import (DYNAMIC_RANGE, FLOAT32, Arrays, FamilyAdapter,
                                     TensorMeaning, Tensors)
from modules.two_tower import catalog, features
from modules.two_tower.app_input import VOCABULARY_FILE
from modules.two_tower.model import TOP_K


class TwoTowerAdapter(FamilyAdapter):
  """User index in, top-K item ids and scores out; parity as recall@K."""
  inputs = (tf.TensorSpec([], tf.int64, name=catalog.USER_XF),)
  # Full int8 has no kernel for string gathers (the item ids), so only float
  # activations: float32 and dynamic-range (int8 weights) conversions.
  quantization_modes = (FLOAT32, DYNAMIC_RANGE)
  quality_metric = f"recall_at_{TOP_K}"
  preprocessing = {
      "raw_input": f"'{features.USER_ID}': a user id string",
      "rule": (f"{catalog.USER_XF} = the line index (0-based) of the id in "
               f"{VOCABULARY_FILE}, or the number of lines there for an unknown user "
               "(answered with the most popular items); int64, one per request row"),
  }
  app_input = "modules.two_tower.app_input.prepare"

  title = "Top-K movie recommender (two_tower family)"
  description = (f"Recommends up to {TOP_K} items (movies) a user has not rated in "
                 "training, best first: a two-tower retrieval model over a catalogue frozen "
                 "at training time; unknown users get the most popular items.")
  license = ("Code: Apache-2.0. Weights and the user and item ids inside come from the "
             "training data: with the default data, MovieLens-100k under the GroupLens "
             "research licence (research use only; no redistribution or commercial use "
             "without GroupLens' permission).")
  tensor_meanings = {
      catalog.USER_XF: TensorMeaning(
          description=(f"One user per row: the line index (0-based) of the user id in "
                       f"{VOCABULARY_FILE}, or the number of lines there for an unknown "
                       "user."),
          associated_files=((VOCABULARY_FILE, "TENSOR_VALUE_LABELS",
                             "User ids: line i (0-based) holds the id of user index i."),)),
      features.TOP_ITEM_IDS: TensorMeaning(
          description=(f"Up to {TOP_K} recommended item ids (MovieLens movie ids as "
                       "strings) per user, best first, none the user rated in training.")),
      features.TOP_SCORES: TensorMeaning(
          description=(f"The score of each of {features.TOP_ITEM_IDS}, same order, "
                       "descending: the dot product of the user's and the item's embedding, "
                       "or for an unknown user the log of the item's training count. Higher "
                       "is better; not a probability.")),
  }

  def outputs(self, model: Any, transformed: Tensors) -> Tensors:
    item_ids, top_scores = model.recommend_for_index(
        tf.reshape(transformed[catalog.USER_XF], [-1]))
    return {features.TOP_ITEM_IDS: item_ids, features.TOP_SCORES: top_scores}

  def parity_request(self, serialized: tf.Tensor) -> Tuple[Tensors, Arrays]:
    """`serving_default` takes raw user ids; recall needs the raw true item."""
    raw = tf.io.parse_example(serialized, {
        key: tf.io.FixedLenFeature([], tf.string)
        for key in (features.USER_ID, features.ITEM_ID)})
    return ({features.USER_ID: raw[features.USER_ID]},
            {features.ITEM_ID: raw[features.ITEM_ID].numpy()})

  def quality(self, eval_batch: Arrays, outputs: Arrays) -> float:
    """Share of eval examples whose true item is among the K returned."""
    hits = outputs[features.TOP_ITEM_IDS] == eval_batch[features.ITEM_ID][:, np.newaxis]
    return float(np.mean(np.any(hits, axis=1)))

  def extra_files(self, tft_output: tft.TFTransformOutput) -> Dict[str, str]:
    return {VOCABULARY_FILE: tft_output.vocabulary_file_by_name(features.USER_VOCAB)}


ADAPTER = TwoTowerAdapter()
