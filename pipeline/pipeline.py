"""The one TFX pipeline every model family runs through.

ExampleGen (train, validation carved from train, eval) -> StatisticsGen ->
ImportSchemaGen (curated schema) ->
ExampleValidator -> AnomaliesGate -> Transform -> Trainer ->
baseline (a Resolver over MLMD, or ServedBaseline reading the serving
directory where resolvers cannot run) -> Evaluator (TFMA) -> Pusher ->
TFLiteExporter (when the family has a TFLite adapter and the runner gives a
TFLite directory).

EvalReport writes each Evaluator output as an HTML + JSON report artifact
(on Kubeflow also as the HTML and Metrics artifacts its UI renders).

`create_pipeline` is pure: it builds the DAG from a FamilyConfig and values the
runner supplies (paths, Beam args, metadata), and touches no file system.
"""
from typing import List, Optional, Type

from google.protobuf import json_format
from tfx.components import Evaluator, ExampleValidator, StatisticsGen, Trainer, Transform
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.common import resolver
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2, trainer_pb2, transform_pb2
from tfx.types import channel, standard_artifacts

from components.anomalies_gate import AnomaliesGate
from components.atomic_pusher import AtomicPusher
from components.baseline_strategy import LatestBlessedBaselineStrategy
from components.eval_report.component import EvalReport
from components.kfp_ui import KubeflowUiArtifacts
from components.served_baseline import ServedBaseline, ServedBaselineEvaluator
from components.spans import SpanRequest
from components.tflite_exporter.component import TFLiteExporter
from components.warm_start import NODE_ID as WARM_START_NODE_ID, WarmStartModel
from modules.common.contract import (COMPRESSION_KEY, EVAL_SPLIT, NO_COMPRESSION, TRAIN_SPLIT,
                                     TRAINER_SPLITS, VALIDATION_SPLIT, WARM_START_FRACTION_KEY)
from pipeline.configs import FamilyConfig
from pipeline.evaluation import build_eval_config


def create_pipeline(
    *,
    family: FamilyConfig,
    pipeline_root: str,
    data_dir: str,
    schema_path: str,
    serving_model_dir: str,
    beam_pipeline_args: List[str],
    metadata_connection_config=None,
    enable_cache: bool = True,
    train_steps: Optional[int] = None,
    gate_min_value: Optional[float] = None,
    baseline_strategy: Optional[Type[resolver.ResolverStrategy]] = (
        LatestBlessedBaselineStrategy),
    tflite_dir: Optional[str] = None,
    tflite_quantization: Optional[str] = None,
    reference_statistics_path: Optional[str] = None,
    kubeflow_ui_artifacts: bool = False,
    span_request: Optional[SpanRequest] = None,
    warm_start: bool = True,
    accept_drift: bool = False,
    compression: Optional[str] = None,
) -> tfx_pipeline.Pipeline:
  """Builds the pipeline of one model family.

  Args:
    family: the model family's settings (pipeline/configs.py).
    pipeline_root: where TFX writes artifacts.
    data_dir: the family's data, as its example_source reads it (`train/`
      and `eval/` TFRecords of tf.Example, or MovieLens files), or
      `span-<N>/` folders of such data (components/spans.py). The split is
      fixed by the data, so every run on the same data uses the same
      train/eval examples.
    schema_path: the curated schema the validator checks data against.
    serving_model_dir: TF Serving model directory; pushes go to numbered
      sub-directories.
    beam_pipeline_args: Beam options for the Beam-based components.
    metadata_connection_config: MLMD connection; None lets the orchestrator
      supply its own (Kubeflow).
    enable_cache: reuse the outputs of components whose inputs did not change.
    train_steps: overrides the family's default number of training steps.
    gate_min_value: overrides the family's minimum value of the gated metric.
    baseline_strategy: the resolver strategy choosing the Evaluator's
      baseline from MLMD; the default excludes the candidate itself (see
      components/baseline_strategy). None: no resolver; the baseline is the
      newest version under `serving_model_dir` (components/served_baseline),
      for orchestrators that run no resolvers (open-source Kubeflow).
    tflite_dir: where the pushed model's TFLite versions go (a local path or URI);
      None: no TFLite export.
    tflite_quantization: overrides the family's TFLite quantisation mode.
    reference_statistics_path: statistics the train split must not drift from
      (the schema's drift comparators); None: no drift check.
    kubeflow_ui_artifacts: also write the report as the HTML and Metrics
      artifacts the Kubeflow and Vertex UIs render (components/kfp_ui).
    span_request: which span, and how wide a window of spans ending at it,
      to read where the data comes in spans; None: the newest span and the
      family's default window (span_window), as many spans as exist.
    warm_start: on a new span, start training from the model served from an
      older span, for families that warm-start (warm_start_fraction);
      False: train from scratch.
    accept_drift: let data that drifted beyond the schema's thresholds
      through (a person judged the shift real); the run summary and the
      report say it was accepted (components/anomalies_gate).
    compression: overrides the family's compression of its exports
      (contract.COMPRESSIONS; one the family's run_fn takes).
  """
  example_gen = family.example_source.component(
      data_dir, span_request or SpanRequest(window=family.span_window))
  statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
  schema_gen = ImportSchemaGen(schema_file=schema_path)
  example_validator = ExampleValidator(
      statistics=statistics_gen.outputs["statistics"],
      schema=schema_gen.outputs["schema"])
  anomalies_gate = AnomaliesGate(
      anomalies=example_validator.outputs["anomalies"],
      statistics=statistics_gen.outputs["statistics"],
      schema=schema_gen.outputs["schema"],
      reference_statistics=reference_statistics_path or "",
      serving_dir=serving_model_dir, accept_drift=int(accept_drift))

  # Transform analyses train alone and transforms what the Trainer reads; the
  # eval split is never transformed, so no Trainer choice can touch it.
  transform = Transform(
      examples=example_gen.outputs["examples"],
      schema=schema_gen.outputs["schema"],
      preprocessing_fn=family.preprocessing_fn,
      splits_config=transform_pb2.SplitsConfig(analyze=[TRAIN_SPLIT],
                                              transform=list(TRAINER_SPLITS)),
      # StatisticsGen describes the raw data and nothing reads Transform's
      # own pre- and post-transform statistics: they cost two more
      # statistics passes over the data in every run.
      disable_statistics=True)
  transform.add_upstream_node(anomalies_gate)

  warm_start_nodes = []
  trainer_options, custom_config = {}, {}
  if warm_start and family.warm_start_fraction:
    warm_start_nodes.append(WarmStartModel(
        serving_dir=serving_model_dir,
        examples=example_gen.outputs["examples"]).with_id(WARM_START_NODE_ID))
    trainer_options["base_model"] = warm_start_nodes[0].outputs["base_model"]
    custom_config[WARM_START_FRACTION_KEY] = family.warm_start_fraction
  compression = family.checked_compression(compression or family.compression)
  if compression != NO_COMPRESSION:
    custom_config[COMPRESSION_KEY] = compression
  if custom_config:
    trainer_options["custom_config"] = custom_config
  trainer = Trainer(
      run_fn=family.run_fn,
      examples=transform.outputs["transformed_examples"],
      transform_graph=transform.outputs["transform_graph"],
      schema=schema_gen.outputs["schema"],
      train_args=trainer_pb2.TrainArgs(splits=[TRAIN_SPLIT],
                                       num_steps=train_steps or family.train_steps),
      eval_args=trainer_pb2.EvalArgs(splits=[VALIDATION_SPLIT], num_steps=family.eval_steps),
      **trainer_options)

  if baseline_strategy is None:
    baseline = ServedBaseline(serving_dir=serving_model_dir).with_id("served_baseline")
    baseline_model = baseline.outputs["baseline"]
    evaluator_class = ServedBaselineEvaluator
  else:
    resolver_inputs = {
        "model": channel.Channel(type=standard_artifacts.Model),
        "model_blessing": channel.Channel(type=standard_artifacts.ModelBlessing),
    }
    if baseline_strategy is LatestBlessedBaselineStrategy:
      resolver_inputs["candidate"] = trainer.outputs["model"]
    baseline = resolver.Resolver(
        strategy_class=baseline_strategy, **resolver_inputs).with_id("baseline_resolver")
    baseline_model = baseline.outputs["model"]
    evaluator_class = Evaluator

  eval_config = build_eval_config(family, gate_min_value)
  evaluator = evaluator_class(
      examples=example_gen.outputs["examples"],
      model=trainer.outputs["model"],
      baseline_model=baseline_model,
      example_splits=[EVAL_SPLIT],
      eval_config=eval_config).with_id("Evaluator")

  pusher = AtomicPusher(
      model=trainer.outputs["model"],
      model_blessing=evaluator.outputs["blessing"],
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(
              base_directory=serving_model_dir)),
      examples=example_gen.outputs["examples"],
      statistics=statistics_gen.outputs["statistics"]).with_id("Pusher")

  # After the Pusher, so the report names the version pushed (or why none was).
  eval_report = EvalReport(evaluation=evaluator.outputs["evaluation"],
                           blessing=evaluator.outputs["blessing"],
                           model=trainer.outputs["model"],
                           pushed_model=pusher.outputs["pushed_model"],
                           data_check=anomalies_gate.outputs["data_check"],
                           serving_dir=serving_model_dir,
                           eval_config=json_format.MessageToJson(eval_config, sort_keys=True))

  ui_artifacts = ([KubeflowUiArtifacts(report=eval_report.outputs["report"])]
                  if kubeflow_ui_artifacts else [])

  exporters = []
  if tflite_dir and family.tflite_adapter:
    exporters.append(TFLiteExporter(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        pushed_model=pusher.outputs["pushed_model"],
        transform_graph=transform.outputs["transform_graph"],
        examples=example_gen.outputs["examples"],
        family=family.name, adapter=family.tflite_adapter, tflite_dir=tflite_dir,
        quantization=family.export_quantization(compression, tflite_quantization)))

  return tfx_pipeline.Pipeline(
      pipeline_name=family.pipeline_name,
      pipeline_root=pipeline_root,
      components=[example_gen, statistics_gen, schema_gen, example_validator,
                  anomalies_gate, transform, *warm_start_nodes, trainer, baseline,
                  evaluator, pusher, eval_report, *ui_artifacts, *exporters],
      enable_cache=enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=beam_pipeline_args)
