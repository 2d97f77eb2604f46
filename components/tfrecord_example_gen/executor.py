"""Beam executor: `train/` and `eval/` TFRecords -> train, validation, eval.

ImportExampleGen would copy the two folders as two splits; this executor
copies them the same way (serialized records, untouched) and sends the train
records that contract.is_validation_record picks to `validation`: a hash of
each record, so the same examples every run and on every runner.
"""
import os
from typing import Any, Dict

import apache_beam as beam
from tfx.types import standard_component_specs

from components.carved_splits import CarvedSplitsExecutor
from modules.common.contract import (EVAL_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT,
                                     is_validation_record)


def _read(pipeline: beam.Pipeline, input_base: str, split: str) -> beam.pvalue.PCollection:
  return pipeline | f"Read[{split}]" >> beam.io.ReadFromTFRecord(
      os.path.join(input_base, split, "*"))


class Executor(CarvedSplitsExecutor):
  """Copies eval; partitions train into train and validation."""

  def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                             exec_properties: Dict[str, Any]
                             ) -> Dict[str, beam.pvalue.PCollection]:
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    train, validation = (
        _read(pipeline, input_base, TRAIN_SPLIT)
        | "CarveValidation" >> beam.Partition(
            lambda record, _: int(is_validation_record(record)), 2))
    return {TRAIN_SPLIT: train, VALIDATION_SPLIT: validation,
            EVAL_SPLIT: _read(pipeline, input_base, EVAL_SPLIT)}
