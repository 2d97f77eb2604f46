"""Feature and output names of the two-tower family, shared by ExampleGen,
Transform, Trainer and the TFMA metric so they cannot drift apart."""
from components.movielens_example_gen.movielens import GENRES

USER_ID = "user_id"
ITEM_ID = "item_id"
GENRES_KEY = "genres"
RATING = "rating"
TIMESTAMP = "timestamp"

# Transform vocabulary files (tft.TFTransformOutput.vocabulary_by_name).
USER_VOCAB = "user_id_vocab"
ITEM_VOCAB = "item_id_vocab"
GENRE_NAMES = GENRES

# Outputs of the serving signatures.
TOP_ITEM_IDS = "item_ids"
TOP_SCORES = "scores"
RANK = "rank"  # 0-based rank of the true item among the user's unseen items


def transformed_name(key: str) -> str:
  return key + "_xf"
