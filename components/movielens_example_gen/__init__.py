"""ExampleGen for MovieLens-format interaction logs, split per user by time."""
