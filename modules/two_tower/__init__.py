"""Two-tower retrieval recommender on MovieLens-format interaction logs."""
