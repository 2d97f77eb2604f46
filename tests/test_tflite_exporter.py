"""TFLiteExporter's executor on a real, briefly trained CNN.

The CNN is trained through real tft_beam and run through the executor as
TFX calls it (tests/tflite_testing.py). Broken conversions are real
alternative adapters (the CNN computed layer by layer with one layer
changed), named by dotted name like any family's adapter.
"""
import gzip
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components.tflite_exporter import executor, layout, parity
from modules.cnn import features, tflite as cnn_tflite
from modules.common import contract
from pipeline import configs, pipeline
from tests import tflite_testing, trained_models, tft_testing

SCHEMA = configs.CNN.schema_path()
VERSION = tflite_testing.VERSION
CNN_ADAPTER = configs.CNN.tflite_adapter
PARITY_EXAMPLES = 200


class _LayerByLayerCnnAdapter(cnn_tflite.CnnAdapter):
  """The CNN computed layer by layer, so a subclass can change one layer."""

  def apply(self, layer, x):
    return layer(x, training=False)

  def outputs(self, model, transformed):
    x = transformed[cnn_tflite.IMAGE_XF]
    for layer in model.layers[1:]:  # layers[0] is the input.
      x = self.apply(layer, x)
      if layer.name == features.PROBABILITIES:
        return {features.PROBABILITIES: x}
    raise ValueError("the CNN has no probabilities layer")


class _ScaledHeadAdapter(_LayerByLayerCnnAdapter):
  """Broken: output weights scaled by 1.01. Predicted classes barely move,
  probabilities do: only an output comparison catches it."""

  def apply(self, layer, x):
    if layer.name == features.PROBABILITIES:
      return tf.nn.softmax(tf.matmul(x, layer.kernel * 1.01) + layer.bias)
    return super().apply(layer, x)


class _DroppedBatchNormAdapter(_LayerByLayerCnnAdapter):
  """Broken: the dense head's batch normalisation is skipped."""

  def apply(self, layer, x):
    return x if layer.name == "dense_bn" else super().apply(layer, x)


class _StaticBatchCnnAdapter(cnn_tflite.CnnAdapter):
  """The CNN converted with a static batch of 16, as LSTM families need."""
  batch_size = 16


class _MissingExtraFileAdapter(cnn_tflite.CnnAdapter):
  """Broken: its extra file does not exist."""

  def extra_files(self, tft_output):
    return {"vocab.txt": "/no-such-vocabulary.txt"}


class _UndescribedOutputAdapter(cnn_tflite.CnnAdapter):
  """Broken: says nothing about its output tensor."""
  tensor_meanings = {cnn_tflite.IMAGE_XF: cnn_tflite.CnnAdapter.tensor_meanings[
      cnn_tflite.IMAGE_XF]}


SCALED_HEAD_ADAPTER = _ScaledHeadAdapter()
MISSING_EXTRA_FILE_ADAPTER = _MissingExtraFileAdapter()
UNDESCRIBED_OUTPUT_ADAPTER = _UndescribedOutputAdapter()
DROPPED_BATCH_NORM_ADAPTER = _DroppedBatchNormAdapter()
STATIC_BATCH_ADAPTER = _StaticBatchCnnAdapter()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cnn_trained, digit_examples):
  """The session's CNN (tests/trained_models.py: 80 steps on 640 digits), in
  Trainer/Transform artifact layout, with the 200 eval digits it is checked on.

  Trained well above chance: int8 accuracy parity on a model that predicts
  one class would prove nothing.
  """
  eval_serialized = digit_examples["eval"][:PARITY_EXAMPLES]
  work_dir, export_dir = trained_models.copy_of(
      cnn_trained, str(tmp_path_factory.mktemp("cnn_tflite") / "work"))
  return {**tflite_testing.as_artifacts(work_dir, export_dir, eval_serialized),
          "eval_serialized": eval_serialized}


def run_exporter(trained, tflite_dir, mode=contract.FLOAT32, adapter=CNN_ADAPTER, **kwargs):
  kwargs.setdefault("parity_examples", PARITY_EXAMPLES)
  return tflite_testing.run_exporter(trained, tflite_dir, "cnn", adapter, mode, **kwargs)


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory):
  """One export per quantisation mode (each is converted once for all tests)."""
  results = {}
  for mode in contract.QUANTIZATION_MODES:
    tflite_dir = tmp_path_factory.mktemp(f"tflite_{mode}") / "cnn"
    results[mode] = (tflite_dir, run_exporter(trained, tflite_dir, mode))
  return results


def _savedmodel(trained):
  return tf.saved_model.load(os.path.join(trained["model"], "Format-Serving")).signatures


def test_float32_export_is_published_whole_with_its_metadata(trained, exports):
  tflite_dir, export = exports[contract.FLOAT32]
  version_dir = os.path.join(tflite_dir, VERSION)
  assert os.listdir(tflite_dir) == [VERSION], "a staging or claim entry was left behind"
  assert sorted(os.listdir(version_dir)) == [contract.LABELS_FILE, layout.METADATA_FILE,
                                             layout.MODEL_FILE]

  metadata = layout.read_metadata(version_dir)
  size = os.path.getsize(os.path.join(version_dir, layout.MODEL_FILE))
  assert metadata["family"] == "cnn" and metadata["version"] == VERSION
  assert metadata["quantization"] == contract.FLOAT32 and metadata["size_bytes"] == size
  with open(os.path.join(version_dir, layout.MODEL_FILE), "rb") as f:
    assert metadata["gzip_size_bytes"] == len(gzip.compress(f.read(), compresslevel=9))
  assert _shapes(metadata["inputs"]) == [("image_xf", [-1, 28, 28, 1], "float32")]
  assert _shapes(metadata["outputs"]) == [("probabilities", [-1, 10], "float32")]
  tflite_testing.assert_no_machine_paths(
      metadata, version_dir, source_model=os.path.join(trained["model"], "Format-Serving"),
      serving_model=f"/serving/cnn/{VERSION}")
  assert metadata["adapter"] == CNN_ADAPTER and metadata["extra_files"] == [contract.LABELS_FILE]
  assert "/ 255.0" in metadata["preprocessing"]["rule"]
  figures = metadata["parity"]
  assert figures["examples"] == PARITY_EXAMPLES and figures["passed"] is True
  assert figures["max_abs_diff"] <= parity.FLOAT_MAX_ABS_DIFF

  assert export.get_int_custom_property(executor.EXPORTED) == 1
  assert export.get_string_custom_property(executor.DESTINATION) == version_dir
  assert export.get_string_custom_property(executor.VERSION) == VERSION
  assert export.get_int_custom_property(executor.SIZE_BYTES) == size
  assert json.loads(export.get_string_custom_property(executor.PARITY)) == figures
  assert layout.read_metadata(export.uri) == metadata


def _shapes(tensors):
  return [(t["name"], t["shape"], t["dtype"]) for t in tensors]


def test_metadata_json_says_what_the_digit_tensors_mean(exports):
  tflite_dir, _ = exports[contract.FLOAT32]
  metadata = layout.read_metadata(os.path.join(tflite_dir, VERSION))
  [image], [probabilities] = metadata["inputs"], metadata["outputs"]
  assert "white" in image["description"] and "black background" in image["description"]
  assert image["normalization"] == {"mean": 0.0, "std": 255.0, "rule": "(raw - mean) / std"}
  assert image["image"] == {"color_space": "GRAYSCALE", "height": 28, "width": 28}
  assert image["value_range"] == [0.0, 1.0]
  assert "index i is the probability that the image shows digit i" in (
      probabilities["description"])
  assert probabilities["labels_file"] == contract.LABELS_FILE
  assert "MNIST" in metadata["title"] and "CC BY-SA 3.0" in metadata["license"]


@pytest.mark.parametrize("mode", contract.QUANTIZATION_MODES)
def test_embedded_metadata_reads_back_with_the_digit_labels(exports, mode):
  tflite_dir, _ = exports[mode]
  version_dir = os.path.join(tflite_dir, VERSION)
  tensors = tflite_testing.embedded_tensors(version_dir)
  assert layout.read_metadata(version_dir)["embedded_metadata"]["min_parser_version"] == "1.0.0"
  image, probabilities = tensors["image_xf"], tensors["probabilities"]
  assert image["content"] == "image" and image["color_space"] == "GRAYSCALE"
  assert image["image_size"] == {"width": 28, "height": 28}
  assert image["normalization"] == {"mean": [0.0], "std": [255.0]}
  assert image["stats"] == {"min": [0.0], "max": [1.0]} and image["associated_files"] == []
  assert probabilities["content"] == "feature"
  assert probabilities["stats"] == {"min": [0.0], "max": [1.0]}
  tflite_testing.assert_embeds_file(version_dir, probabilities, contract.LABELS_FILE,
                                    "TENSOR_AXIS_LABELS")
  with open(os.path.join(version_dir, contract.LABELS_FILE)) as f:
    assert f.read().split("\n") == [str(digit) for digit in range(10)] + [""]


def test_embedded_normalization_turns_raw_digits_into_the_models_input(trained, exports):
  """(raw - mean) / std of the embedded options is what Transform feeds the
  model, and the raw digits are white on black as the descriptions say."""
  tflite_dir, _ = exports[contract.FLOAT32]
  normalization = tflite_testing.embedded_tensors(
      os.path.join(tflite_dir, VERSION))["image_xf"]["normalization"]
  serialized = trained["eval_serialized"][:50]
  pixels = tft_testing.parse(serialized, tft_testing.load_schema(SCHEMA))[
      features.IMAGE_KEY].numpy().reshape(-1, 28, 28, 1)
  transformed = _savedmodel(trained)[contract.TRANSFORM_SIGNATURE](
      examples=tf.constant(serialized))[cnn_tflite.IMAGE_XF].numpy()
  np.testing.assert_allclose((pixels - normalization["mean"][0]) / normalization["std"][0],
                             transformed, atol=1e-6)
  border = np.concatenate([pixels[:, :2].ravel(), pixels[:, -2:].ravel()])
  assert border.mean() < 5 and pixels.max() == 255, "digits are not white on black"


@pytest.mark.parametrize("mode", contract.QUANTIZATION_MODES)
def test_exported_model_runs_under_litert_as_it_passed_the_gate(trained, exports, mode):
  tflite_dir, _ = exports[mode]
  version_dir = os.path.join(tflite_dir, VERSION)
  serialized = tf.constant(trained["eval_serialized"])
  signatures = _savedmodel(trained)
  image = signatures[contract.TRANSFORM_SIGNATURE](examples=serialized)[cnn_tflite.IMAGE_XF]
  served = signatures[contract.SERVING_DEFAULT](examples=serialized)[features.PROBABILITIES]
  outputs = tflite_testing.run_litert(version_dir, {cnn_tflite.IMAGE_XF: image.numpy()})
  figures = layout.read_metadata(version_dir)["parity"]
  if mode == contract.FLOAT32:
    np.testing.assert_allclose(outputs[features.PROBABILITIES], served.numpy(),
                               atol=parity.FLOAT_MAX_ABS_DIFF)
  labels = tft_testing.parse(trained["eval_serialized"], tft_testing.load_schema(SCHEMA))[
      features.LABEL_KEY].numpy().reshape(-1)
  accuracy = np.mean(np.argmax(outputs[features.PROBABILITIES], axis=-1) == labels)
  assert abs(accuracy - figures["savedmodel_accuracy"]) <= parity.QUANTIZED_MAX_QUALITY_DELTA


def test_machine_paths_are_relative_and_uris_kept_as_given():
  version_dir = "/out/tflite/cnn/1700000000"
  assert executor.portable_location("/out/serving/cnn/1700000000", version_dir) == (
      "../../../serving/cnn/1700000000")
  assert executor.portable_location("gs://bucket/serving/cnn/1700000000", version_dir) == (
      "gs://bucket/serving/cnn/1700000000")


@pytest.mark.parametrize("mode", [contract.DYNAMIC_RANGE, contract.INT8])
def test_quantized_model_keeps_accuracy_within_a_point_and_is_smaller(exports, mode):
  tflite_dir, _ = exports[mode]
  metadata = layout.read_metadata(os.path.join(tflite_dir, VERSION))
  figures = metadata["parity"]
  assert figures["metric"] == "accuracy"
  assert figures["savedmodel_accuracy"] > 0.5, "model too weak for a meaningful parity check"
  assert abs(figures["quality_delta"]) <= parity.QUANTIZED_MAX_QUALITY_DELTA
  assert figures["max_abs_diff"] > 0, "quantisation changed nothing: was it applied?"
  float_size = layout.read_metadata(
      os.path.join(exports[contract.FLOAT32][0], VERSION))["size_bytes"]
  assert metadata["quantization"] == mode and metadata["size_bytes"] < float_size / 3
  assert metadata["inputs"][0]["dtype"] == "float32"  # Same app code in every mode.


def test_int8_model_computes_in_int8_between_float_edges(exports):
  tflite_dir, _ = exports[contract.INT8]
  float_tensors, edges = tflite_testing.float_tensors_and_edges(
      os.path.join(tflite_dir, VERSION, layout.MODEL_FILE))
  assert float_tensors == edges


def test_static_batch_adapter_is_fed_in_padded_chunks(trained, tmp_path):
  tflite_dir = tmp_path / "cnn"
  run_exporter(trained, tflite_dir, adapter=f"{__name__}.STATIC_BATCH_ADAPTER",
               parity_examples=50)  # 3 full chunks of 16 and a padded one.
  metadata = layout.read_metadata(os.path.join(tflite_dir, VERSION))
  assert metadata["inputs"][0]["shape"] == [16, 28, 28, 1]
  assert metadata["parity"]["examples"] == 50
  assert metadata["parity"]["max_abs_diff"] <= parity.FLOAT_MAX_ABS_DIFF


@pytest.mark.parametrize("blessed,pushed,reason", [(0, 0, "model not blessed"),
                                                   (1, 0, "model not pushed")])
def test_model_not_blessed_or_not_pushed_is_not_exported(trained, tmp_path, blessed, pushed,
                                                         reason):
  export = run_exporter(trained, tmp_path / "cnn", blessed=blessed, pushed=pushed)
  assert export.get_int_custom_property(executor.EXPORTED) == 0
  assert export.get_string_custom_property(executor.REASON) == reason
  assert not os.path.exists(tmp_path / "cnn")


@pytest.mark.parametrize("adapter,mode,figure", [
    ("SCALED_HEAD_ADAPTER", contract.FLOAT32, "max abs diff"),
    ("DROPPED_BATCH_NORM_ADAPTER", contract.DYNAMIC_RANGE, "accuracy"),
])
def test_parity_gate_rejects_a_broken_conversion_and_writes_nothing(
    trained, tmp_path, adapter, mode, figure):
  tflite_dir = tmp_path / "cnn"
  with pytest.raises(parity.ParityError) as failure:
    run_exporter(trained, tflite_dir, mode, adapter=f"{__name__}.{adapter}")
  message = str(failure.value)
  assert f"family 'cnn', mode '{mode}'" in message and figure in message
  assert f"on {PARITY_EXAMPLES} eval examples" in message
  assert not os.path.exists(tflite_dir), "the gate failed but something was written"


def test_missing_extra_file_fails_the_export_naming_it_and_writes_nothing(trained, tmp_path):
  tflite_dir = tmp_path / "cnn"
  with pytest.raises(FileNotFoundError, match="ships vocab.txt from /no-such-vocabulary.txt"):
    run_exporter(trained, tflite_dir, adapter=f"{__name__}.MISSING_EXTRA_FILE_ADAPTER")
  assert not os.path.exists(tflite_dir)


def test_adapter_that_leaves_a_tensor_undescribed_is_refused_and_nothing_written(
    trained, tmp_path):
  tflite_dir = tmp_path / "cnn"
  with pytest.raises(ValueError,
                     match=r"no TensorMeaning for TFLite tensors \['probabilities'\]"):
    run_exporter(trained, tflite_dir, adapter=f"{__name__}.UNDESCRIBED_OUTPUT_ADAPTER")
  assert not os.path.exists(tflite_dir)


def test_existing_version_is_never_replaced(trained, exports):
  tflite_dir, _ = exports[contract.FLOAT32]
  model_file = os.path.join(tflite_dir, VERSION, layout.MODEL_FILE)
  before = open(model_file, "rb").read()
  with pytest.raises(FileExistsError, match="versions are never replaced"):
    run_exporter(trained, tflite_dir, contract.DYNAMIC_RANGE)
  assert open(model_file, "rb").read() == before


def test_cli_prepares_raw_pixels_and_predicts_like_the_savedmodel(trained, exports, tmp_path):
  tflite_dir, _ = exports[contract.FLOAT32]
  serialized = trained["eval_serialized"][:5]
  pixels = tft_testing.parse(serialized, tft_testing.load_schema(SCHEMA))[features.IMAGE_KEY]
  rows = tflite_testing.run_cli(os.path.join(tflite_dir, VERSION),
                                [{"image": row} for row in pixels.numpy().tolist()],
                                str(tmp_path / "digits.json"))
  predicted = np.array([row[features.PROBABILITIES] for row in rows])
  expected = _savedmodel(trained)[contract.RAW_SIGNATURE](image=pixels)[features.PROBABILITIES]
  np.testing.assert_allclose(predicted, expected.numpy(), atol=1e-4)


def _cnn_pipeline(**kwargs):
  return pipeline.create_pipeline(
      family=configs.CNN, pipeline_root="/root", data_dir="/data", schema_path=SCHEMA,
      serving_model_dir="/serving/cnn", beam_pipeline_args=[], **kwargs)


def test_pipeline_exports_after_the_pusher_only_when_given_a_tflite_dir():
  assert "TFLiteExporter" not in [c.id for c in _cnn_pipeline().components]
  components = {c.id: c for c in _cnn_pipeline(
      tflite_dir="/out/tflite/cnn", tflite_quantization=contract.INT8).components}
  exporter = components["TFLiteExporter"]
  producers = {key: channel.producer_component_id for key, channel in exporter.inputs.items()}
  assert producers == {executor.MODEL_KEY: "Trainer", executor.BLESSING_KEY: "Evaluator",
                       executor.PUSHED_MODEL_KEY: "Pusher",
                       executor.TRANSFORM_GRAPH_KEY: "Transform",
                       executor.EXAMPLES_KEY: "TFRecordExampleGen"}
  assert exporter.exec_properties[executor.QUANTIZATION_KEY] == contract.INT8
  assert exporter.exec_properties[executor.ADAPTER_KEY] == configs.CNN.tflite_adapter
  default = {c.id: c for c in _cnn_pipeline(tflite_dir="/out/tflite/cnn").components}
  assert (default["TFLiteExporter"].exec_properties[executor.QUANTIZATION_KEY]
          == configs.CNN.tflite_quantization)
  with pytest.raises(ValueError, match="unknown TFLite quantization 'int4'"):
    _cnn_pipeline(tflite_dir="/out/tflite/cnn", tflite_quantization="int4")
