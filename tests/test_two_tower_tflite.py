"""Two-tower TFLite adapter: the whole top-K recommender in one TFLite model.

A small two-tower model trained on generated interactions through real
tft_beam (the session's, tests/trained_models.py) is exported by the real
executor (tests/tflite_testing.py); its
recommendations are compared with the SavedModel's `serving_default`, which
is what TF Serving returns for the same raw user ids.
"""
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from components.tflite_exporter import parity
from modules.common import contract
from modules.two_tower import features, model as two_tower_model
from modules.two_tower import tflite as two_tower_tflite
from pipeline import configs
from tests import tflite_testing, trained_models

K = two_tower_model.TOP_K


@pytest.fixture(scope="module")
def exported(tmp_path_factory, two_tower_trained, interaction_splits):
  """The session's small two-tower model (tests/trained_models.py: 40 steps
  on a generated log), exported as float32."""
  work_dir, export_dir = trained_models.copy_of(
      two_tower_trained, str(tmp_path_factory.mktemp("two_tower_tflite") / "work"))
  artifacts = tflite_testing.as_artifacts(work_dir, export_dir, interaction_splits["eval"])
  tflite_dir = tmp_path_factory.mktemp("tflite") / "two_tower"
  tflite_testing.run_exporter(artifacts, tflite_dir, "two_tower",
                              configs.TWO_TOWER.tflite_adapter)
  signatures = tf.saved_model.load(os.path.join(artifacts["model"], "Format-Serving")).signatures
  users = [user.decode() for user in tft.TFTransformOutput(
      artifacts["transform"]).vocabulary_by_name(features.USER_VOCAB)]
  return artifacts, os.path.join(tflite_dir, tflite_testing.VERSION), signatures, users


def test_float32_export_ships_the_user_vocabulary_and_matches_the_savedmodel(exported):
  artifacts, version_dir, _, _ = exported
  metadata = tflite_testing.assert_ships_vocabulary(
      artifacts, version_dir, features.USER_VOCAB, two_tower_tflite.VOCABULARY_FILE)
  assert [(t["name"], t["shape"], t["dtype"]) for t in metadata["inputs"]] == [
      ("user_id_xf", [-1], "int64")]
  assert [(t["name"], t["shape"], t["dtype"]) for t in metadata["outputs"]] == [
      (features.TOP_ITEM_IDS, [-1, K], "string"), (features.TOP_SCORES, [-1, K], "float32")]
  tflite_testing.assert_no_machine_paths(
      metadata, version_dir, source_model=os.path.join(artifacts["model"], "Format-Serving"),
      serving_model=f"/serving/two_tower/{tflite_testing.VERSION}")
  tflite_testing.assert_float32_parity_passed(metadata, f"recall_at_{K}")
  figures = metadata["parity"]
  assert figures["label_mismatch_share"] <= parity.FLOAT_MAX_LABEL_MISMATCH
  # Recall of a trained model, measured independently of the TFLite model.
  assert figures["savedmodel_" + figures["metric"]] > 0


def test_embedded_metadata_names_the_user_vocabulary_and_the_outputs(exported):
  _, version_dir, _, _ = exported
  tensors = tflite_testing.embedded_tensors(version_dir)
  tflite_testing.assert_embeds_file(version_dir, tensors["user_id_xf"],
                                    two_tower_tflite.VOCABULARY_FILE, "TENSOR_VALUE_LABELS")
  assert "item ids" in tensors[features.TOP_ITEM_IDS]["description"]
  assert "not a probability" in tensors[features.TOP_SCORES]["description"]


def test_cli_and_litert_recommend_what_tf_serving_returns_for_known_and_unknown_users(
    exported, tmp_path):
  _, version_dir, signatures, users = exported
  requested = [users[0], users[1], users[-1], "no-such-user"]
  rows = tflite_testing.run_cli(version_dir, [{"user_id": u} for u in requested],
                                str(tmp_path / "users.json"))
  served = signatures[contract.SERVING_DEFAULT](
      user_id=tf.constant([u.encode() for u in requested]))
  expected_ids = [[i.decode() for i in row] for row in served[features.TOP_ITEM_IDS].numpy()]
  assert [row[features.TOP_ITEM_IDS] for row in rows] == expected_ids
  np.testing.assert_allclose([row[features.TOP_SCORES] for row in rows],
                             served[features.TOP_SCORES].numpy(), atol=1e-4)
  litert = tflite_testing.run_litert(version_dir, two_tower_tflite.ADAPTER.prepare(
      [{"user_id": u} for u in requested], version_dir))
  assert [[i.decode() for i in row] for row in litert[features.TOP_ITEM_IDS]] == expected_ids
  np.testing.assert_allclose(litert[features.TOP_SCORES], served[features.TOP_SCORES].numpy(),
                             atol=1e-4)


def test_parity_gate_refuses_top_k_item_ids_that_disagree(exported):
  """Scores that agree do not excuse item ids that do not."""
  _, _, signatures, users = exported
  served = {name: value.numpy() for name, value in signatures[contract.SERVING_DEFAULT](
      user_id=tf.constant([u.encode() for u in users[:20]])).items()}
  shifted = dict(served, **{features.TOP_ITEM_IDS: np.roll(served[features.TOP_ITEM_IDS], 1,
                                                           axis=1)})
  eval_batch = {features.ITEM_ID: served[features.TOP_ITEM_IDS][:, 0]}
  figures = parity.measure(two_tower_tflite.ADAPTER, contract.FLOAT32, eval_batch,
                           served=served, candidate=shifted)
  assert figures["max_abs_diff"] == 0 and figures["label_mismatch_share"] == 1.0
  assert not figures["passed"]
  with pytest.raises(parity.ParityError, match="label_mismatch_share"):
    parity.check("two_tower", contract.FLOAT32, figures)


def test_int8_is_refused_before_anything_is_converted(exported, tmp_path):
  artifacts, _, _, _ = exported
  tflite_testing.assert_int8_refused(artifacts, tmp_path / "two_tower", configs.TWO_TOWER)
