"""CNN image classifier on 28x28 grey digits."""
