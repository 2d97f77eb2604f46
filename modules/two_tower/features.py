"""Feature, output and signature names of the two-tower family, shared by
ExampleGen, Transform, Trainer, the TFMA metric and the pipeline config so
they cannot drift apart (TF-free)."""
from modules.common.contract import transformed_name  # noqa: F401  (the family's naming rule)
from modules.two_tower.movielens import GENRES

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
RANK = "rank"  # 0-based rank of the true item among the user's unseen items; TFMA scores it
# The serialized-tf.Example signature TFMA scores (serving_default takes raw
# user ids).
SCORING_SIGNATURE = "score_examples"
