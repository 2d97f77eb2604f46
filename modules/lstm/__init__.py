"""LSTM sentiment classifier on Chinese product reviews, tokenised by character."""
