"""Beam executor: `train/` and `eval/` TFRecords -> train, validation, eval.

ImportExampleGen would copy the two folders as two splits; this executor
copies them the same way (serialized records, untouched) and sends the train
records that contract.is_validation_record picks to `validation`: a hash of
each record, so the same examples every run and on every runner.

Over a window of spans, train (and validation) come from every span's
`train/` and eval from the newest span's `eval/` alone: the model is judged on
the newest data and never trained on it.
"""
from typing import Any, Dict, List

import apache_beam as beam
from tfx.types import standard_component_specs

from components.carved_splits import CarvedSplitsExecutor
from modules.common.contract import (EVAL_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT,
                                     is_validation_record)


def _read(pipeline: beam.Pipeline, folders: List[str], split: str) -> beam.pvalue.PCollection:
  """The records of `split`'s files under each of `folders`, as one collection."""
  reads = [pipeline | f"Read[{split}@{index}]" >> beam.io.ReadFromTFRecord(
      f"{folder.rstrip('/')}/{split}/*") for index, folder in enumerate(folders)]
  return reads[0] if len(reads) == 1 else reads | f"Join[{split}]" >> beam.Flatten()


class Executor(CarvedSplitsExecutor):
  """Copies eval; partitions train into train and validation."""

  def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                             exec_properties: Dict[str, Any]
                             ) -> Dict[str, beam.pvalue.PCollection]:
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    if self.window is None:
      train_folders = eval_folders = [input_base]
    else:
      train_folders = [self.window.directory(span) for span in self.window.spans]
      eval_folders = [self.window.directory(self.window.newest)]
    train, validation = (
        _read(pipeline, train_folders, TRAIN_SPLIT)
        | "CarveValidation" >> beam.Partition(
            lambda record, _: int(is_validation_record(record)), 2))
    return {TRAIN_SPLIT: train, VALIDATION_SPLIT: validation,
            EVAL_SPLIT: _read(pipeline, eval_folders, EVAL_SPLIT)}
