"""Two-tower wiring in the shared pipeline: ExampleGen kind, TFMA signature, gate."""
import numpy as np
import tensorflow_model_analysis as tfma
from components.tfrecord_example_gen.component import TFRecordExampleGen

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
  assert isinstance(example_gen(configs.CNN), TFRecordExampleGen)


def test_eval_config_scores_the_family_signature_and_gates_lift_over_popular():
  """The floor is on the lift over the most-popular ranking; the change
  against the served model on recall@10 itself, which both models are
  scored on alike (each lift divides by its own window's popularity)."""
  config = evaluation.build_eval_config(configs.TWO_TOWER)
  assert config.model_specs[0].signature_name == features.SCORING_SIGNATURE == "score_examples"
  assert evaluation.build_eval_config(configs.CNN).model_specs[0].signature_name == (
      "serving_default")
  thresholds = tfma.metrics.metric_thresholds_from_metrics_specs(config.metrics_specs)
  # {key: [(slice, threshold)]}; a change threshold's key is the metric's diff.
  bounds = {(key.name, key.is_diff): [str(threshold).split()[0] for _, threshold in found]
            for key, found in thresholds.items()}
  assert bounds == {("recall_lift_at_10", False): ["lower_bound"],
                    ("recall_at_10", True): ["absolute"]}
  assert config.model_specs[0].prediction_key == ""  # both rank outputs reach the metrics
  assert metrics.RecallAtK(k=5).name == "recall_at_5"
  assert metrics.PopularRecallAtK(k=10).name == "popular_recall_at_10"


def test_lift_combiner_reads_both_rank_outputs():
  """The gated lift: model hits in the top K over most-popular hits, from
  the scoring signature's two outputs as TFMA hands them over."""
  metric = metrics.RecallLiftAtK(k=2)
  (computation,) = metric.computations()
  combiner = computation.combiner
  accumulator = combiner.create_accumulator()
  for ranks, popular_ranks in (([0., 1., 5.], [3., 1., 9.]), ([2.], [0.])):
    inputs = tfma.metrics.StandardMetricInputs(predictions={
        features.RANK: np.array(ranks), features.POPULAR_RANK: np.array(popular_ranks)})
    accumulator = combiner.add_input(accumulator, inputs)
  accumulator = combiner.merge_accumulators([accumulator, combiner.create_accumulator()])
  assert accumulator == (2, 2, 4)
  (value,) = combiner.extract_output(accumulator).values()
  assert value == 1.0
  # No popular hit: any model hit is an unbounded lift, none is none.
  assert list(combiner.extract_output((1, 0, 4)).values()) == [float("inf")]
  assert list(combiner.extract_output((0, 0, 4)).values()) == [0.0]
