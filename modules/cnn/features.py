"""Feature and output names and shapes of the CNN family, shared by Transform,
the Trainer, the TFLite adapter and the pipeline config (TF-free)."""
from modules.common import contract
from modules.common.contract import transformed_name  # noqa: F401  (the family's naming rule)

IMAGE_KEY = "image"
LABEL_KEY = "label"
IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
NUM_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH
NUM_CLASSES = 10
MAX_PIXEL_VALUE = 255.0

# Outputs of the serving signatures; PROBABILITIES is what TFMA scores.
PROBABILITIES = "probabilities"
CLASS_ID = "class_id"

# The compressions the CNN's run_fn takes (contract.COMPRESSIONS): all of them.
COMPRESSIONS = contract.COMPRESSIONS
REFUSED_COMPRESSIONS = ()
