"""Code shared by every model family: data input, signatures, training loop."""
