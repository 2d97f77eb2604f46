"""The TFLite prediction CLI on a real CNN export: a family folder picks the
newest complete version, and bad input gets one clear line naming the file or
field, exit 2, no traceback.

The session's small CNN (tests/trained_models.py, trained through real
tft_beam) is exported by the real TFLiteExporter executor
(tests/tflite_testing.py); the predictions' quality
is not under test here, only how the CLI finds the model and treats input.
"""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from components.tflite_exporter import layout, parity, predict
from modules.cnn import features, tflite as cnn_tflite
from modules.common import contract
from pipeline import configs
from tests import light_commands, tflite_testing, tft_testing, trained_models

VERSION = tflite_testing.VERSION
OLDER, INCOMPLETE = str(int(VERSION) - 100), str(int(VERSION) + 100)
DIGIT = {"image": [0] * 784}


@pytest.fixture(scope="module")
def family_dir(tmp_path_factory, cnn_trained, digit_examples):
  """tflite/cnn/ holding the real export, an older complete copy of it and a
  newer version without metadata.json (a copy cut short)."""
  eval_serialized = digit_examples["eval"][:50]
  work_dir, export_dir = trained_models.copy_of(
      cnn_trained, str(tmp_path_factory.mktemp("cnn_predict") / "work"))
  artifacts = tflite_testing.as_artifacts(work_dir, export_dir, eval_serialized)
  tflite_dir = tmp_path_factory.mktemp("tflite") / "cnn"
  tflite_testing.run_exporter(artifacts, tflite_dir, "cnn", configs.CNN.tflite_adapter,
                              parity_examples=50)
  shutil.copytree(tflite_dir / VERSION, tflite_dir / OLDER)
  os.makedirs(tflite_dir / INCOMPLETE)
  shutil.copy(tflite_dir / VERSION / layout.MODEL_FILE, tflite_dir / INCOMPLETE)
  return tflite_dir


def _main(capsys, model_dir, input_path):
  status = predict.main(["--model-dir", str(model_dir), "--input", str(input_path)])
  captured = capsys.readouterr()
  return status, captured.out, captured.err


def _write(tmp_path, content, name="input.json"):
  path = tmp_path / name
  path.write_text(content if isinstance(content, str) else json.dumps(content))
  return path


def test_family_folder_uses_the_newest_complete_version(family_dir, tmp_path):
  """Run as a user runs it: the version is named, nothing else reaches
  stderr, and neither TensorFlow nor anything else heavy is loaded."""
  digits = _write(tmp_path, [DIGIT, {"image": [255] * 784}])
  by_folder, heavy = light_commands.run(tflite_testing.PREDICT_CLI,
                                        ["--model-dir", str(family_dir), "--input", str(digits)])
  assert by_folder.returncode == 0, by_folder.stderr
  assert heavy == []
  assert by_folder.stderr == f"Using version {VERSION} ({family_dir / VERSION})\n"
  rows = json.loads(by_folder.stdout)
  assert len(rows) == 2 and all(len(row["probabilities"]) == 10 for row in rows)
  assert rows == tflite_testing.run_cli(str(family_dir / VERSION), [DIGIT, {"image": [255] * 784}],
                                        str(tmp_path / "again.json"))


def test_litert_and_the_rule_metadata_names_give_the_savedmodels_probabilities(
    family_dir, cnn_trained, digit_examples, tmp_path):
  """The app's path (app_input's numpy rule, then LiteRT) scores real digits
  as TF Serving's `serving_default` does, within float32 parity."""
  metadata = layout.read_metadata(str(family_dir / VERSION))
  assert metadata[layout.APP_INPUT_KEY] == cnn_tflite.CnnAdapter.app_input
  examples = digit_examples["eval"][:8]
  parsed = tft_testing.parse(examples, tft_testing.load_schema(configs.CNN.schema_path()))
  pixels = parsed[features.IMAGE_KEY].numpy().reshape(len(examples), -1)
  rows = tflite_testing.run_cli(str(family_dir), [{"image": p.tolist()} for p in pixels],
                                str(tmp_path / "digits.json"))
  served = tf.saved_model.load(cnn_trained[1]).signatures[contract.SERVING_DEFAULT](
      examples=tf.constant(examples))[features.PROBABILITIES].numpy()
  np.testing.assert_allclose([row[features.PROBABILITIES] for row in rows], served,
                             atol=parity.FLOAT_MAX_ABS_DIFF)


def test_a_version_exported_before_metadata_named_the_rule_is_prepared_by_its_adapter(
    family_dir, tmp_path, capsys):
  version = tmp_path / VERSION
  shutil.copytree(family_dir / VERSION, version)
  metadata = layout.read_metadata(str(version))
  del metadata[layout.APP_INPUT_KEY]
  (version / layout.METADATA_FILE).write_text(json.dumps(metadata))
  digits = _write(tmp_path, [DIGIT, {"image": [255] * 784}])
  status, out, err = _main(capsys, version, digits)
  assert (status, err) == (0, "")
  assert json.loads(out) == tflite_testing.run_cli(
      str(family_dir / VERSION), [DIGIT, {"image": [255] * 784}], str(tmp_path / "again.json"))


def test_missing_field_names_the_instance_and_field(family_dir, tmp_path, capsys):
  path = _write(tmp_path, [DIGIT, {"pixels": [0] * 784}])
  status, out, err = _main(capsys, family_dir / VERSION, path)
  assert (status, out) == (2, "")
  assert err.startswith(f"error: --input {path}: instance 1 has no field 'image' (expected ")
  assert "Traceback" not in err


def test_wrong_shape_names_the_size_expected(family_dir, tmp_path, capsys):
  path = _write(tmp_path, {"image": [0] * 100})
  status, out, err = _main(capsys, family_dir / VERSION, path)
  assert (status, out) == (2, "")
  assert err.startswith(f"error: --input {path}: each instance needs 784 pixel values, "
                        "got shape (100,)")


@pytest.mark.parametrize("content, message", [
    (None, "No such file or directory"),
    ("{\"image\": [0, ", "not JSON: "),
    ("[]", "expected a JSON object or a non-empty list of objects, got list (empty)"),
    ("[3]", "instance 0 is not a JSON object (got int)"),
])
def test_unreadable_input_file_is_named(family_dir, tmp_path, capsys, content, message):
  path = tmp_path / "input.json" if content is None else _write(tmp_path, content)
  status, out, err = _main(capsys, family_dir / VERSION, path)
  assert (status, out) == (2, "")
  assert err.startswith(f"error: --input {path}: {message}"), err


def test_folder_without_a_complete_version_is_named(family_dir, tmp_path, capsys):
  empty = tmp_path / "cnn"
  shutil.copytree(family_dir / INCOMPLETE, empty / INCOMPLETE)
  status, _, err = _main(capsys, empty, _write(tmp_path, DIGIT))
  assert status == 2
  assert err.startswith(f"error: --model-dir {empty}: neither an exported version")
  status, _, err = _main(capsys, tmp_path / "absent", _write(tmp_path, DIGIT))
  assert (status, err) == (2, f"error: --model-dir {tmp_path / 'absent'}: no such directory\n")


def test_version_missing_its_model_file_is_named(family_dir, tmp_path, capsys):
  version = tmp_path / VERSION
  shutil.copytree(family_dir / VERSION, version)
  os.remove(version / layout.MODEL_FILE)
  status, _, err = _main(capsys, version, _write(tmp_path, DIGIT))
  assert status == 2
  assert err.startswith(f"error: {version / layout.MODEL_FILE}: missing")
