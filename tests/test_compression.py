"""Compression of the exported models (modules/common/compression.py),
chosen per run with --compression on both runners: what each family takes
and refuses, the Trainer of a compiled spec asked for it, and the CNN's
pruned export with its kernels' zeros."""
import json

import pytest

import kubeflow_runner
from modules.cnn import model as cnn_model
from modules.common import compression, contract
from modules.common.training import with_weights_of
from pipeline import configs
from tests import tft_testing
from tests.test_kubeflow_runner import BASE_ARGS

PRUNING_STEPS = 40


def _trainer_custom_config(spec):
  parameters = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
  value = parameters.get("custom_config", {}).get("runtimeValue", {}).get("constant")
  return json.loads(value) if value else {}


def test_a_family_refuses_a_compression_it_cannot_take_in_one_line(capsys):
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_runner.parse_args(["--model", "lstm", *BASE_ARGS, "--compression", "pruning",
                                "--output", "unused.yaml"])
  assert exit_info.value.code == 2
  (line,) = [l for l in capsys.readouterr().err.splitlines() if "error:" in l]
  assert "the lstm family takes --compression none, not 'pruning'" in line
  with pytest.raises(ValueError, match="quantization-aware training is not built yet"):
    configs.CNN.checked_compression(contract.QAT)


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
