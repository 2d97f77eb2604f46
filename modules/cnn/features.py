"""Feature names and shapes of the CNN family, shared by Transform and Trainer."""
IMAGE_KEY = "image"
LABEL_KEY = "label"
IMAGE_HEIGHT = 28
IMAGE_WIDTH = 28
NUM_PIXELS = IMAGE_HEIGHT * IMAGE_WIDTH
NUM_CLASSES = 10
MAX_PIXEL_VALUE = 255.0


def transformed_name(key: str) -> str:
  return key + "_xf"
