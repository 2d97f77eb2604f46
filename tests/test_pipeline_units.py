"""Pipeline pieces that need no training: family lookup, runner arguments,
the baseline strategy, the anomalies gate and the TFMA gate configuration."""
import argparse
import dataclasses
import glob
import json
import os
import shutil

import pytest
import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs
from tfx.types import standard_artifacts

from components import anomalies_gate, baseline_strategy
from pipeline import configs, evaluation
from runners import preflight
from tests import e2e_helpers


def test_unknown_family_is_named_with_the_known_ones():
  with pytest.raises(ValueError, match=r"unknown model family 'resnet'.*cnn"):
    configs.get_family("resnet")


def test_runner_rejects_unknown_family_and_missing_data_dir(tmp_path):
  result = e2e_helpers.run_refused_pipeline(["--model", "resnet",
                                             "--output-dir", str(tmp_path)])
  assert result.returncode == 2 and "invalid choice: 'resnet'" in result.stderr
  missing = str(tmp_path / "nowhere")
  result = e2e_helpers.run_refused_pipeline(["--model", "cnn", "--data-dir", missing,
                                             "--output-dir", str(tmp_path)])
  assert result.returncode == 2 and f"{missing} is not a readable directory" in result.stderr


@pytest.mark.parametrize("model, extra, message", [
    ("cnn", ["--train-steps", "0"], "--train-steps must be at least 1"),
    ("cnn", ["--min-metric", "nan"], "--min-metric nan is outside the range"),
    # An accuracy of 1.5 could never bless: a typo, refused before a run.
    ("cnn", ["--min-metric", "1.5"], "--min-metric 1.5 is outside the range of cnn's "
     "gated metric SparseCategoricalAccuracy [0, 1]"),
    ("two_tower", ["--min-metric", "-1"], "gated metric RecallLiftAtK [0, inf]"),
])
def test_runner_rejects_settings_that_could_never_train_or_bless(tmp_path, model, extra,
                                                                  message):
  output_dir = tmp_path / "out"
  result = e2e_helpers.run_refused_pipeline(["--model", model,
                                             "--output-dir", str(output_dir), *extra])
  assert result.returncode == 2 and message in result.stderr
  assert not output_dir.exists()


def test_a_lift_floor_above_one_is_a_valid_two_tower_setting():
  parser = argparse.ArgumentParser()
  preflight.add_run_arguments(parser, default_output_dir="unused")
  args = parser.parse_args(["--model", "two_tower", "--min-metric", "2.5",
                            "--data-dir", configs.REPO_ROOT + "/data/interactions/synthetic"])
  assert preflight.check_run_arguments(parser, args) is configs.TWO_TOWER


def test_missing_default_data_says_how_to_build_it(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(configs, "DEFAULT_DATA_ROOT", str(tmp_path))
  parser = argparse.ArgumentParser()
  preflight.add_run_arguments(parser, default_output_dir=str(tmp_path / "out"))
  with pytest.raises(SystemExit) as exit_info:
    preflight.check_run_arguments(parser, parser.parse_args(["--model", "two_tower"]))
  assert exit_info.value.code == 2
  assert "`make movielens` builds it" in capsys.readouterr().err


def test_runner_rejects_an_output_dir_it_cannot_create(tmp_path):
  blocker = tmp_path / "a-file"
  blocker.write_text("not a directory")
  result = e2e_helpers.run_refused_pipeline(["--model", "cnn",
                                             "--output-dir", str(blocker / "out")])
  assert result.returncode == 2
  assert f"--output-dir {blocker / 'out'} cannot be created or written" in result.stderr


@pytest.mark.parametrize("special", ["/proc/tfx-outputs", "/sys/tfx-outputs"])
def test_output_dir_on_a_special_filesystem_is_refused_not_a_traceback(special):
  """Root passes the permission bits there; creating a directory fails."""
  assert not preflight.can_create_directory(special)
  result = e2e_helpers.run_refused_pipeline(["--model", "cnn", "--output-dir", special])
  assert result.returncode == 2, result.stdout + result.stderr
  assert f"--output-dir {special} cannot be created or written" in result.stderr
  assert "Traceback" not in result.stderr


def test_writable_output_dir_check_leaves_nothing_behind(tmp_path):
  assert preflight.can_create_directory(str(tmp_path / "new" / "deeper"))
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("gate, message", [
    (None, "a Gate with a metric is required"),
    (configs.Gate(metric="", min_value=0.5, max_regression=0.01), "a Gate with a metric"),
    (configs.Gate(metric="AUC", min_value=float("nan"), max_regression=0.01), "finite min_value"),
    (configs.Gate(metric="AUC", min_value=0.5, max_regression=-0.1), "max_regression >= 0"),
    (configs.Gate(metric="AUC", min_value=1.5, max_regression=0.01), "within value_range"),
    (configs.Gate(metric="AUC", min_value=0.5, max_regression=0.01, change_metric="Recall"),
     "the gate's change_metric Recall  must be one of its reported_metrics"),
])
def test_family_without_a_usable_gate_is_refused_when_declared(gate, message):
  """A family that could never bless (so never push) is refused when its
  FamilyConfig is built, before any pipeline is."""
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(configs.CNN, name="ungated", gate=gate)


def _artifact(kind, artifact_id, **int_properties):
  artifact = kind()
  artifact.id = artifact_id
  for key, value in int_properties.items():
    artifact.set_int_custom_property(key, value)
  return artifact


def test_baseline_is_latest_blessed_model_other_than_the_candidate():
  models = [_artifact(standard_artifacts.Model, i) for i in (1, 2, 3)]
  blessings = [
      _artifact(standard_artifacts.ModelBlessing, 10, blessed=1, current_model_id=1),
      _artifact(standard_artifacts.ModelBlessing, 11, blessed=0, current_model_id=2),
      _artifact(standard_artifacts.ModelBlessing, 12, blessed=1, current_model_id=3),
  ]
  # Candidate 3 is itself blessed (a cached re-run): the baseline must be 1.
  picked = baseline_strategy.pick_baseline(models, blessings, candidates=[models[2]])
  assert [m.id for m in picked["model"]] == [1]
  assert [b.id for b in picked["model_blessing"]] == [10]
  # A new candidate 4 is compared with the newest blessed model, 3.
  picked = baseline_strategy.pick_baseline(
      models, blessings, candidates=[_artifact(standard_artifacts.Model, 4)])
  assert [m.id for m in picked["model"]] == [3]
  # Nothing blessed but the candidate: no baseline at all.
  picked = baseline_strategy.pick_baseline(models[2:], blessings[2:], candidates=[models[2]])
  assert picked == {"model": [], "model_blessing": []}


def test_gate_describes_real_tfdv_anomalies_per_split_and_feature(tmp_path):
  import pandas as pd
  schema = tfdv.load_schema_text(configs.CNN.schema_path())
  split_names = ["train", "eval"]
  for split, label in (("train", 12), ("eval", 3)):  # 12 is outside the 0..9 domain.
    stats = tfdv.generate_statistics_from_dataframe(
        pd.DataFrame({"label": [label, 1], "image": [[0] * 784, [255] * 784]}))
    anomalies = tfdv.validate_statistics(stats, schema)
    os.makedirs(tmp_path / f"Split-{split}")
    (tmp_path / f"Split-{split}" / anomalies_gate.ANOMALIES_FILE).write_bytes(
        anomalies.SerializeToString())
  problems = anomalies_gate.describe_anomalies(str(tmp_path), split_names)
  assert len(problems) == 1
  assert problems[0].startswith("split 'train', feature 'label':")


def test_eval_config_gates_overall_slice_only_and_slices_by_feature():
  config = evaluation.build_eval_config(configs.CNN, min_value_override=0.5)
  gated = [m for spec in config.metrics_specs for m in spec.metrics
           if m.class_name == configs.CNN.gate.metric]
  assert len(gated) == 1 and not gated[0].HasField("threshold")
  (per_slice,) = gated[0].per_slice_thresholds
  assert [str(s) for s in per_slice.slicing_specs] == [""]  # the overall slice
  assert per_slice.threshold.value_threshold.lower_bound.value == 0.5
  assert per_slice.threshold.change_threshold.absolute.value == -configs.CNN.gate.max_regression
  assert [list(s.feature_keys) for s in config.slicing_specs] == [[], ["label"]]


def test_lstm_intervals_never_rederive_ten_thousand_threshold_matrices():
  """TFMA's jackknife recomputes every derived metric per sample and slice;
  the LSTM's AUC must not bring TFMA's 10,000-threshold confusion matrices
  along (they made the intervals cost 2.3x the Evaluator's time)."""
  config = tfma.utils.update_eval_config_with_defaults(
      evaluation.build_eval_config(configs.LSTM), has_baseline=True)
  names = {key.name for computation in metric_specs.to_computations(
      config.metrics_specs, eval_config=config) for key in computation.keys}
  matrices = sorted(n for n in names if n.startswith("_binary_confusion_matrices:num_thresholds"))
  assert matrices == ["_binary_confusion_matrices:num_thresholds=1000"]
  assert "auc" in names


def _spans_of_digits(root, numbers):
  """Span folders holding one real shipped digit file per split."""
  for number in numbers:
    for split in ("train", "eval"):
      folder = root / f"span-{number}" / split
      folder.mkdir(parents=True)
      shutil.copyfile(sorted(glob.glob(os.path.join(configs.DEFAULT_DATA_ROOT, "mnist",
                                                    split, "*")))[0], folder / "part.gz")
  return str(root)


def test_a_newest_span_older_than_the_served_models_is_refused_unless_named(tmp_path, capsys):
  data_dir = _spans_of_digits(tmp_path / "data", (1, 2))
  output_dir = tmp_path / "out"
  record = output_dir / "serving" / "cnn" / "1700000000" / "assets.extra" / "push_record.json"
  record.parent.mkdir(parents=True)
  record.write_text(json.dumps({"model_uri": "m", "span": 3, "window_spans": [1, 2, 3]}))
  parser = argparse.ArgumentParser()
  preflight.add_run_arguments(parser, default_output_dir=str(output_dir))

  def check(*extra):
    return preflight.check_run_arguments(parser, parser.parse_args(
        ["--model", "cnn", "--data-dir", data_dir, *extra]))

  with pytest.raises(SystemExit) as exit_info:
    check()
  assert exit_info.value.code == preflight.EXIT_DATA_ANOMALIES
  assert (f"{data_dir}: its newest span is 2, older than span 3, which version 1700000000 "
          f"under {output_dir / 'serving' / 'cnn'} was trained on; pass --span 2"
          in capsys.readouterr().err)
  assert check("--span", "2") is configs.CNN  # a back-fill, asked for
  record.write_text(json.dumps({"model_uri": "m", "span": 2, "window_spans": [2]}))
  assert check() is configs.CNN  # a re-run of the span served
