"""One LSTM pipeline run that the end-to-end, module and TFLite tests share.

The LSTM end-to-end tests (tests/test_lstm_e2e.py) assert on a run of the
whole pipeline on a small slice of the shipped reviews; the module and TFLite
tests need a small LSTM trained through the real `preprocessing_fn` and
`run_fn` on that same slice. The run's Trainer trains one, so the session
trains the family's three-member ensemble once, not twice (a model of its
own took 45 s more): `lstm_trained` (tests/trained_models.py) hands out the
run's Transform graph and its Trainer's SavedModel. Made once per test
session (tests/conftest.py sends every test that uses it to one
pytest-xdist worker).
"""
import dataclasses
import glob
import os
import subprocess

import pytest

from pipeline import configs
from runners.layout import OutputLayout
from tests import e2e_helpers

REVIEWS = os.path.join(configs.DEFAULT_DATA_ROOT, "reviews")
# ExampleGen carves about a tenth of the train slice out for validation.
N_TRAIN, N_EVAL = 1200, 300
TRAIN_STEPS = 40
# It measured AUC 0.84 on the eval slice against this floor.
RUN_ARGS = ["--model", "lstm", "--train-steps", str(TRAIN_STEPS), "--min-metric", "0.7"]


@dataclasses.dataclass(frozen=True)
class LstmRun:
  data_dir: str                        # the slice: train/ and eval/
  output_dir: str
  result: subprocess.CompletedProcess  # succeeded

  def component_output(self, component: str, output: str) -> str:
    """The one URI of a component's output artifact in this run (a first
    run on a fresh output directory: one execution each)."""
    (uri,) = glob.glob(os.path.join(OutputLayout(self.output_dir).pipeline_root, component,
                                    output, "*"))
    return uri

  @property
  def transform_graph_dir(self) -> str:
    """The Transform graph the Trainer trained and exported with."""
    return self.component_output("Transform", "transform_graph")

  @property
  def serving_model_dir(self) -> str:
    """The SavedModel the Trainer exported (what the Evaluator judged and
    the Pusher pushed)."""
    return os.path.join(self.component_output("Trainer", "model"), "Format-Serving")


@pytest.fixture(scope="session")
def lstm_run(tmp_path_factory) -> LstmRun:
  """The LSTM pipeline on the first 1,200 train and 300 eval shipped
  reviews, 40 steps, into a fresh output directory; it must succeed."""
  return LstmRun(*e2e_helpers.run_on_small_slice(tmp_path_factory, REVIEWS, N_TRAIN, N_EVAL,
                                                 RUN_ARGS))
