"""Training on every device the Trainer is given (modules/common/training.py,
`distribution_strategy`), shown on two logical CPU devices: the CNN trained
on two replicas reaches the loss one device reaches on the same global batch,
and its export serves what the model computes, with the same signatures as
the Trainer's. The training runs in a fresh interpreter
(tests/two_replica_training.py)."""
import json
import os
import subprocess
import sys

import pytest

from modules.common import contract

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Batch normalisation keeps per-replica batch statistics and dropout and the
# augmentation draw per replica, so two replicas are not bit for bit one
# device on the global batch: the three epochs' training losses measured
# 2.12, 1.24, 1.08 on two replicas against 2.18, 1.28, 1.07 on one (within 3%).
LOSS_TOLERANCE = 0.10


@pytest.fixture(scope="module")
def two_replica_result(cnn_trained, tmp_path_factory):
  work_dir, _ = cnn_trained
  output_dir = tmp_path_factory.mktemp("two_replicas")
  result_path = output_dir / "result.json"
  env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_NUM_INTRAOP_THREADS="1")
  completed = subprocess.run(
      [sys.executable, "-m", "tests.two_replica_training", work_dir, str(output_dir),
       str(result_path)], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
      timeout=900, check=False)
  assert completed.returncode == 0, completed.stderr[-5000:]
  with open(result_path, encoding="utf-8") as f:
    return json.load(f)


def test_two_replicas_reach_the_loss_of_one_device_on_the_same_global_batch(
    two_replica_result):
  result = two_replica_result
  assert result["replicas"] == 2
  one, two = result[contract.DISTRIBUTE_NONE], result[contract.DISTRIBUTE_MIRRORED]
  assert (one["replicas"], two["replicas"]) == (1, 2)
  assert two["train_loss"] == pytest.approx(one["train_loss"], rel=LOSS_TOLERANCE)
  # It learnt: the last epoch's training loss is below the first's.
  assert two["train_loss"][-1] < two["train_loss"][0]


def test_the_two_replica_export_serves_what_the_model_computes(two_replica_result):
  assert two_replica_result["export_max_abs_diff"] < 1e-5
  assert {contract.SERVING_DEFAULT, contract.RAW_SIGNATURE,
          contract.TRANSFORM_SIGNATURE} <= set(two_replica_result["signatures"])


def test_the_trainer_asked_for_every_device_exports_the_same_signatures(two_replica_result):
  assert two_replica_result["run_fn_signatures"] == two_replica_result["signatures"]
