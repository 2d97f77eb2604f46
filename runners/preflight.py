"""Checks a runner makes before any component runs, in a second, writing nothing.

TFX fails late and obscurely on input it cannot read (ExampleGen on a missing
split or an empty or non-GZIP file) and on an output directory it cannot
write; these checks name the file or directory at fault instead. The input
check is the family's example source's own (components/example_sources.py),
so this module imports neither TFX nor TensorFlow.
"""
import os
from typing import List

from components.example_sources import InputDataError
from pipeline.configs import FamilyConfig

__all__ = ["InputDataError", "can_create_directory", "check_input"]


def can_create_directory(path: str) -> bool:
  """Whether `path` is, or can be made, a writable directory."""
  while not os.path.exists(path):
    path = os.path.dirname(path)
  return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def check_input(family: FamilyConfig, data_dir: str) -> List[str]:
  """Raises InputDataError naming the file at fault; returns the files found."""
  return family.example_source.check(data_dir)
