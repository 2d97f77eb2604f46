"""Datasets shipped with the project and the code that reads or generates them."""
