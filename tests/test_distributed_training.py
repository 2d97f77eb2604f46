"""Training on every device the Trainer is given (modules/common/training.py,
`distribution_strategy`), shown on two logical CPU devices: the CNN (Keras'
own loss) and the two-tower (its own train step) trained on two replicas
reach the losses one device reaches on the same global batch, and the CNN's
export serves what the model computes, with the same signatures as the
Trainer's. The training runs in a fresh interpreter
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
# No batch statistics or dropout: only the order of the sums differs.
TWO_TOWER_LOSS_TOLERANCE = 0.01


def _two_replica_run(family, trained, output_dir):
  work_dir, _ = trained
  result_path = output_dir / "result.json"
  env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_NUM_INTRAOP_THREADS="1")
  completed = subprocess.run(
      [sys.executable, "-m", "tests.two_replica_training", family, work_dir, str(output_dir),
       str(result_path)], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
      timeout=900, check=False)
  assert completed.returncode == 0, completed.stderr[-5000:]
  with open(result_path, encoding="utf-8") as f:
    return json.load(f)


@pytest.fixture(scope="module")
def two_replica_result(cnn_trained, tmp_path_factory):
  return _two_replica_run("cnn", cnn_trained, tmp_path_factory.mktemp("two_replicas_cnn"))


def _assert_same_losses(result, tolerance):
  assert result["replicas"] == 2
  one, two = result[contract.DISTRIBUTE_NONE], result[contract.DISTRIBUTE_MIRRORED]
  assert (one["replicas"], two["replicas"]) == (1, 2)
  assert two["train_loss"] == pytest.approx(one["train_loss"], rel=tolerance)
  # It learnt: the last epoch's training loss is below the first's.
  assert two["train_loss"][-1] < two["train_loss"][0]


def test_two_replicas_reach_the_loss_of_one_device_on_the_same_global_batch(
    two_replica_result):
  _assert_same_losses(two_replica_result, LOSS_TOLERANCE)


def test_two_tower_replicas_each_take_their_share_of_the_loss(two_tower_trained, tmp_path):
  """Its train step sums the replicas' gradients of its own loss: each takes
  its share of the global mean (measured 4.456, 4.289, 4.098 on two replicas
  against 4.451, 4.285, 4.095 on one; twice these before the share)."""
  _assert_same_losses(_two_replica_run("two_tower", two_tower_trained, tmp_path),
                      TWO_TOWER_LOSS_TOLERANCE)


def test_the_two_replica_export_serves_what_the_model_computes(two_replica_result):
  assert two_replica_result["export_max_abs_diff"] < 1e-5
  assert {contract.SERVING_DEFAULT, contract.RAW_SIGNATURE,
          contract.TRANSFORM_SIGNATURE} <= set(two_replica_result["signatures"])


def test_the_trainer_asked_for_every_device_exports_the_same_signatures(two_replica_result):
  assert two_replica_result["run_fn_signatures"] == two_replica_result["signatures"]
