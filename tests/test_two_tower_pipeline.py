"""Two-tower wiring in the shared pipeline: ExampleGen kind, TFMA signature, gate."""
import tensorflow_model_analysis as tfma
from tfx.components import ImportExampleGen

from components.movielens_example_gen.component import MovieLensExampleGen
from modules.two_tower import features, metrics
from pipeline import configs, evaluation, pipeline


def test_two_tower_pipeline_reads_movielens_and_cnn_keeps_tfrecords(tmp_path):
  def example_gen(family):
    built = pipeline.create_pipeline(
        family=family, pipeline_root=str(tmp_path), data_dir=str(tmp_path),
        schema_path=family.schema_path(), serving_model_dir=str(tmp_path / "serving"),
        beam_pipeline_args=[])
    (found,) = [c for c in built.components if c.id.endswith("ExampleGen")]
    return found

  assert isinstance(example_gen(configs.TWO_TOWER), MovieLensExampleGen)
  assert isinstance(example_gen(configs.CNN), ImportExampleGen)


def test_eval_config_scores_the_family_signature_and_gates_recall_at_10():
  config = evaluation.build_eval_config(configs.TWO_TOWER)
  assert config.model_specs[0].signature_name == features.SCORING_SIGNATURE == "score_examples"
  assert evaluation.build_eval_config(configs.CNN).model_specs[0].signature_name == (
      "serving_default")
  thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(config.metrics_specs)
  gated = {key.name for key in thresholds}
  assert gated == {"recall_at_10"}  # value and change threshold, one metric
  assert metrics.RecallAtK(k=5).name == "recall_at_5"
