"""Feature and output names and sizes of the LSTM family, shared by Transform,
the Trainer, the TFLite adapter and the pipeline config (TF-free)."""
from modules.common import contract
from modules.common.contract import transformed_name  # noqa: F401  (the family's naming rule)

TEXT_KEY = "text"
LABEL_KEY = "label"
# A transformed feature TFMA slices on (through `transform_features`), never
# fed to the model: review length in characters, bucketed.
LENGTH_BUCKET_KEY = "length_bucket"

# Characters kept per review: 200 covers 95% of training reviews uncut
# (p95 = 190, p99 = 341; data/reviews/README.md). A static length is what a
# TFLite conversion of the model needs.
SEQUENCE_LENGTH = 200
CHAR_VOCABULARY = "chars"
# Characters seen fewer times than this in training map to the OOV id: a
# character seen once gives its embedding a single example to learn from.
CHAR_FREQUENCY_THRESHOLD = 2
NUM_OOV_BUCKETS = 1
# Id 0 is padding (masked out by the model); vocabulary ids start at 1 and
# the OOV bucket follows the vocabulary.
PADDING_ID = 0

# Upper bounds (exclusive) of the length buckets, in characters; the last
# bucket holds reviews longer than SEQUENCE_LENGTH, which the model sees cut.
LENGTH_BUCKET_BOUNDARIES = (20, 50, 100, SEQUENCE_LENGTH)
LENGTH_BUCKET_NAMES = ("000-019", "020-049", "050-099", "100-199", "200+")

# Outputs of the serving signatures; PROBABILITY is what TFMA scores.
PROBABILITY = "probability"  # of a positive review
CLASS_ID = "class_id"        # 1 = positive, at probability >= 0.5


def char_id_count(vocabulary_size: int) -> int:
  """Distinct token ids: padding, the vocabulary, and the OOV buckets."""
  return vocabulary_size + NUM_OOV_BUCKETS + 1

# The compressions the LSTM's run_fn takes (contract.COMPRESSIONS), and why
# it refuses the others (docs/tflite-export.md, "Compression"). Its weights, as built for a
# 4,000-character vocabulary (14.2M): the naive-Bayes table 59.0%, the
# masking character and n-gram embeddings 33.1%, the sequence bigram
# embedding 7.4%, the GRUs 0.4%, the rest under 0.2%.
COMPRESSIONS = (contract.NO_COMPRESSION,)
REFUSED_COMPRESSIONS = (
    (contract.PRUNING, "TFMO cannot wrap 59% of its weights, the naive-Bayes ratio table (a "
                       "custom layer), nor 33% without changing what it computes, the "
                       "character and n-gram embeddings whose padding mask TFMO's pruning "
                       "wrapper drops; what is left to prune is under 8%"),
    (contract.QAT, "its TFLite model cannot be full-integer: int8 calibration of the "
                   "recurrent loop crashes the converter (its TFLite adapter refuses int8 "
                   "for the same reason)"),
)
