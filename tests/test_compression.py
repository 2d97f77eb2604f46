"""Compression of the exported models (modules/common/compression.py),
chosen per run with --compression on both runners: what each family takes
and refuses, the Trainer of a compiled spec asked for it, the CNN's pruned
export with its kernels' zeros, and its quantization-aware export converted
to a full-integer TFLite model through the parity gate, and the two-tower's
pruned export, whose layers are pruned one by one."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

import kubeflow_runner
from components.tflite_exporter import executor, layout
from modules.cnn import model as cnn_model
from modules.common import compression, contract
from modules.two_tower import features as two_tower_features, model as two_tower_model
from modules.common.training import with_weights_of
from pipeline import configs, pipeline
from tests import tflite_testing, tft_testing, trained_models
from tests.test_kubeflow_runner import BASE_ARGS

PRUNING_STEPS = 40
# Warm-started from the session's CNN (80 float steps): 32 more float steps,
# then 8 quantization-aware ones (compression.QAT_SHARE_OF_STEPS).
QAT_STEPS = 40
PARITY_EXAMPLES = 200


def _trainer_custom_config(spec):
  parameters = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
  value = parameters.get("custom_config", {}).get("runtimeValue", {}).get("constant")
  return json.loads(value) if value else {}


@pytest.mark.parametrize("family,compression_name,reason", [
    ("lstm", contract.PRUNING, "padding mask TFMO's pruning wrapper drops"),
    ("lstm", contract.QAT, "cannot be full-integer"),
    ("two_tower", contract.QAT, "string gathers, which have no int8 kernel"),
])
def test_a_family_refuses_a_compression_it_cannot_take_in_one_line_with_why(
    capsys, family, compression_name, reason):
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_runner.parse_args(["--model", family, *BASE_ARGS, "--compression",
                                compression_name, "--output", "unused.yaml"])
  assert exit_info.value.code == 2
  (line,) = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
  takes = " or ".join(configs.FAMILIES[family].compressions)
  assert f"the {family} family takes --compression {takes}, not '{compression_name}'" in line
  assert reason in line
  assert configs.CNN.checked_compression(compression_name) == compression_name


def test_quantization_aware_runs_export_a_full_integer_model_and_take_no_other():
  def exporter(**kwargs):
    components = pipeline.create_pipeline(
        family=configs.CNN, pipeline_root="/root", data_dir="/data",
        schema_path=configs.CNN.schema_path(), serving_model_dir="/serving/cnn",
        beam_pipeline_args=[], tflite_dir="/out/tflite/cnn", **kwargs).components
    (found,) = [c for c in components if c.id == "TFLiteExporter"]
    return found.exec_properties[executor.QUANTIZATION_KEY]

  assert configs.CNN.tflite_quantization == contract.FLOAT32
  assert exporter(compression=contract.QAT) == contract.INT8
  assert exporter(compression=contract.PRUNING) == contract.FLOAT32
  with pytest.raises(ValueError, match="--compression qat exports a full-integer TFLite "
                                       "model \\(int8\\), not 'float32'"):
    exporter(compression=contract.QAT, tflite_quantization=contract.FLOAT32)


def test_the_compiled_trainer_is_asked_to_prune_only_when_the_run_asks():
  def spec(*extra):
    args = kubeflow_runner.parse_args(["--model", "cnn", *BASE_ARGS, *extra,
                                       "--output", "unused.yaml"])
    return kubeflow_runner.compile_pipeline(args)

  asked = _trainer_custom_config(spec("--compression", "pruning"))
  assert asked[contract.COMPRESSION_KEY] == contract.PRUNING
  assert contract.COMPRESSION_KEY not in _trainer_custom_config(spec())


@pytest.fixture(scope="module")
def pruned_export(cnn_trained, tmp_path_factory):
  """The CNN trained with pruning on the transformed digits of `cnn_trained`."""
  work_dir, _ = cnn_trained
  output_dir = str(tmp_path_factory.mktemp("pruned"))
  fn_args = tft_testing.fn_args_over(work_dir, output_dir, PRUNING_STEPS,
                                     {contract.COMPRESSION_KEY: contract.PRUNING})
  cnn_model.run_fn(fn_args)
  return fn_args.serving_model_dir


def test_the_pruned_export_holds_the_target_share_of_zeros(pruned_export):
  """As the TFLite adapter rebuilds it: the weights the export holds."""
  sparsity = compression.kernel_sparsity(with_weights_of(cnn_model.build_model(),
                                                         pruned_export))
  classifier = sparsity.pop(cnn_model.features.PROBABILITIES)
  assert classifier == 0.0
  assert len(sparsity) == 5
  for layer, share in sparsity.items():
    assert share == pytest.approx(cnn_model.PRUNED_SPARSITY, abs=0.01), layer


@pytest.fixture(scope="module")
def quantization_aware(cnn_trained, tmp_path_factory):
  """(work dir, export dir): the session's CNN warm-started with `qat`, its
  Trainer's output under a copy of the work dir (so it moves as one)."""
  work_dir = str(tmp_path_factory.mktemp("qat") / "work")
  shutil.copytree(cnn_trained[0], work_dir)
  fn_args = tft_testing.fn_args_over(
      work_dir, os.path.join(work_dir, "trainer"), QAT_STEPS,
      {contract.COMPRESSION_KEY: contract.QAT, contract.WARM_START_FRACTION_KEY: 1.0})
  fn_args.base_model = cnn_trained[1]
  cnn_model.run_fn(fn_args)
  return work_dir, fn_args.serving_model_dir


def test_the_quantization_aware_export_converts_to_int8_within_the_parity_gate(
    quantization_aware, cnn_trained, digit_examples, tmp_path):
  assert compression.is_quantization_aware(quantization_aware[1])
  assert not compression.is_quantization_aware(cnn_trained[1])
  work_dir, export_dir = trained_models.copy_of(quantization_aware, str(tmp_path / "work"))
  artifacts = tflite_testing.as_artifacts(work_dir, export_dir,
                                          digit_examples["eval"][:PARITY_EXAMPLES])
  tflite_dir = tmp_path / "tflite" / "cnn"
  tflite_dir.parent.mkdir()
  tflite_testing.run_exporter(artifacts, tflite_dir, "cnn", configs.CNN.tflite_adapter,
                              contract.INT8, parity_examples=PARITY_EXAMPLES)
  version_dir = os.path.join(tflite_dir, tflite_testing.VERSION)
  figures = layout.read_metadata(version_dir)["parity"]
  # The SavedModel's accuracy is that of its fake-quantized arithmetic.
  assert figures["savedmodel_accuracy"] > 0.5, "model too weak for a meaningful parity check"
  assert figures["passed"] and figures["max_abs_diff"] > 0
  float_tensors, edges = tflite_testing.float_tensors_and_edges(
      os.path.join(version_dir, layout.MODEL_FILE))
  assert float_tensors == edges


def _trained_kernel(model, name: str) -> np.ndarray:
  """Layer `name`'s kernel as trained, flat, in a plain CNN or a
  quantization-aware one (TFMO's wrapper quant_NAME holds the variable:
  while wrapped, `.layer.kernel` is the fake-quantized tensor of the last
  call)."""
  names = {layer.name for layer in model.layers}
  if name in names:
    return model.get_layer(name).kernel.numpy().ravel()
  (kernel,) = [w for w in model.get_layer(f"quant_{name}").weights
               if w.name.endswith("/kernel:0")]
  return kernel.numpy().ravel()


def test_a_quantization_aware_base_model_goes_on_training_quantization_aware(
    quantization_aware, tmp_path):
  """A new span's warm start from a `qat` export fine-tunes it as it was
  exported, with its learned ranges, instead of failing to restore it into
  the float CNN."""
  work_dir, base_model = quantization_aware
  fn_args = tft_testing.fn_args_over(
      work_dir, str(tmp_path / "trainer"), 8,
      {contract.COMPRESSION_KEY: contract.QAT, contract.WARM_START_FRACTION_KEY: 1.0})
  fn_args.base_model = base_model
  cnn_model.run_fn(fn_args)
  assert compression.is_quantization_aware(fn_args.serving_model_dir)
  resumed, base = (cnn_model.exported_architecture(path)
                   for path in (fn_args.serving_model_dir, base_model))
  for name in ("block1_conv0", "dense"):
    kernels = [_trained_kernel(model, name) for model in (resumed, base)]
    assert not np.array_equal(*kernels), f"{name} did not train"
    assert np.corrcoef(*kernels)[0, 1] > 0.99, f"{name} did not start from the base model"


def _checkpoint_sparsity(export_dir: str):
  """{checkpoint key: share of zeros} of every weight the export holds."""
  reader = tf.train.load_checkpoint(os.path.join(export_dir, "variables", "variables"))
  return {key: float(np.mean(reader.get_tensor(key) == 0.0))
          for key, dtype in reader.get_variable_to_dtype_map().items()
          if key.endswith("VARIABLE_VALUE") and dtype.is_floating}


def test_the_pruned_two_tower_exports_its_plain_layers_with_the_zeros(two_tower_trained,
                                                                        tmp_path):
  """The subclassed model's pruned layers (two_tower_model.PRUNED_LAYERS)
  hold the target share of zeros; the rest none; the export names its
  weights as an unpruned one does (a later span warm-starts from it) and
  still recommends."""
  work_dir, _ = two_tower_trained
  fn_args = tft_testing.fn_args_over(work_dir, str(tmp_path / "trainer"), PRUNING_STEPS,
                                     {contract.COMPRESSION_KEY: contract.PRUNING})
  two_tower_model.run_fn(fn_args)
  sparsity = _checkpoint_sparsity(fn_args.serving_model_dir)
  assert not [key for key in sparsity if "/layer/" in key or "mask" in key or "threshold" in key]
  pruned = {key: share for key, share in sparsity.items()
            if key.split("/")[0] in two_tower_model.PRUNED_LAYERS
            and ("kernel" in key or "embeddings" in key)}
  assert {key.split("/")[0] for key in pruned} == set(two_tower_model.PRUNED_LAYERS)
  for key, share in pruned.items():
    assert share == pytest.approx(two_tower_model.PRUNED_SPARSITY, abs=0.02), key
  for layer in ("item_bias", "position_embedding"):
    (share,) = [share for key, share in sparsity.items() if key.startswith(f"{layer}/")]
    assert share < 0.5, layer
  served = tf.saved_model.load(fn_args.serving_model_dir).signatures[contract.SERVING_DEFAULT]
  user = tft.TFTransformOutput(tft_testing.transform_graph_dir(work_dir)).vocabulary_by_name(
      two_tower_features.USER_VOCAB)[0]
  items = served(**{two_tower_features.USER_ID: tf.constant([user])})[
      two_tower_features.TOP_ITEM_IDS]
  assert items.shape == (1, two_tower_model.TOP_K)


def test_a_float_run_warm_starts_from_the_float_weights_of_a_quantization_aware_base(
    quantization_aware, tmp_path):
  """A span after a `qat` one run without compression starts from the
  weights the QAT export fine-tuned, inside its quantization wrappers."""
  work_dir, base_model = quantization_aware
  fn_args = tft_testing.fn_args_over(work_dir, str(tmp_path / "trainer"), 8,
                                     {contract.WARM_START_FRACTION_KEY: 1.0})
  fn_args.base_model = base_model
  cnn_model.run_fn(fn_args)
  assert not compression.is_quantization_aware(fn_args.serving_model_dir)
  warm = cnn_model.exported_architecture(fn_args.serving_model_dir)
  base = cnn_model.exported_architecture(base_model)
  for name in ("block1_conv0", "dense"):
    kernels = [_trained_kernel(model, name) for model in (warm, base)]
    assert np.corrcoef(*kernels)[0, 1] > 0.99, f"{name} did not start from the base model"
