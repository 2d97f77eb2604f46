"""Interaction logs for the two-tower recommender (MovieLens-100k format)."""
