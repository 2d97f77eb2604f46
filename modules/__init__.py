"""Module files for the pipeline's model families.

TFX executors import these modules by dotted name (for example
`modules.cnn.model.run_fn`), so the legacy-Keras switch is set here, before
any family module imports TensorFlow: models are built with `tf_keras` and TFX
/ TFMA must agree on the Keras they use.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
