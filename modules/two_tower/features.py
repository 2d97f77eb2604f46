"""Feature, output and signature names of the two-tower family, shared by
ExampleGen, Transform, Trainer, the TFMA metric and the pipeline config so
they cannot drift apart (TF-free)."""
from modules.common import contract
from modules.common.contract import transformed_name  # noqa: F401  (the family's naming rule)
from modules.two_tower.movielens import GENRES

USER_ID = "user_id"
ITEM_ID = "item_id"
GENRES_KEY = "genres"
RATING = "rating"
TIMESTAMP = "timestamp"
# Item side: title and release year besides the genres.
TITLE = "title"
RELEASE_YEAR = "release_year"
# User side (u.user): demographics, and the history of earlier train items
# (movielens.TimelineRow), most recent first.
USER_AGE = "user_age"
USER_GENDER = "user_gender"
USER_OCCUPATION = "user_occupation"
USER_ZIP = "user_zip"
HISTORY = "history_item_ids"
HISTORY_LENGTH = "history_length"

# Transform vocabulary files (tft.TFTransformOutput.vocabulary_by_name).
USER_VOCAB = "user_id_vocab"
ITEM_VOCAB = "item_id_vocab"
GENDER_VOCAB = "user_gender_vocab"
OCCUPATION_VOCAB = "user_occupation_vocab"
ZIP_VOCAB = "user_zip_prefix_vocab"
TITLE_VOCAB = "title_token_vocab"
GENRE_NAMES = GENRES

# Outputs of the serving signatures.
TOP_ITEM_IDS = "item_ids"
TOP_SCORES = "scores"
RANK = "rank"  # 0-based rank of the true item among the user's unseen items; TFMA scores it
# The same rank under the most-popular ranking: the in-run baseline the gate
# measures the model's lift over.
POPULAR_RANK = "popular_rank"
# Input of the `recommend_with_history` signature: the request's recent item
# ids, most recent first ("" pads rows to one width).
RECENT_ITEM_IDS = "recent_item_ids"
HISTORY_SIGNATURE = "recommend_with_history"
# The serialized-tf.Example signature TFMA scores (serving_default takes raw
# user ids).
SCORING_SIGNATURE = "score_examples"

# Transformed features TFMA slices the evaluation on (through
# `transform_features`), never fed to the model: the user's history length
# at the interaction, and the held-out item's popularity in training.
HISTORY_BUCKET_KEY = "user_history_bucket"
# Prior interactions: at most 5 is cold, fewer than 50 light, else heavy.
HISTORY_BUCKET_BOUNDARIES = (6, 50)
HISTORY_BUCKET_NAMES = ("cold (0-5)", "light (6-49)", "heavy (50+)")
POPULARITY_BUCKET_KEY = "item_popularity_bucket"
# Items by their rank in training popularity, as a share of the items
# training saw: the most popular 20% are the head, the next 30% the torso,
# the least popular half the long tail (with every item training never saw).
POPULARITY_BUCKET_BOUNDARIES = (0.2, 0.5)
POPULARITY_BUCKET_NAMES = ("head", "torso", "long tail")

# The compressions the two-tower's run_fn takes (contract.COMPRESSIONS), and
# why it refuses the others (docs/tflite-export.md, "Compression").
COMPRESSIONS = (contract.NO_COMPRESSION, contract.PRUNING)
REFUSED_COMPRESSIONS = (
    (contract.QAT, "its TFLite model cannot be full-integer: returning item ids needs "
                   "string gathers, which have no int8 kernel (its TFLite adapter refuses "
                   "int8 for the same reason)"),
)
