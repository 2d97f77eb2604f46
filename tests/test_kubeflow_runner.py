"""Kubeflow Pipelines v2 compilation of every family and target (kubeflow_runner.py).

The compiled spec is checked as KFP reads it: parsed into kfp-pipeline-spec
protos and loaded with kfp.components. Its task graph must be the local
pipeline's (with the target's baseline), the kfp target must hold container
executors only, every task must run in the pipeline image with code the image
holds, the Beam options must be the chosen preset's, and nothing of the
compiling machine may appear in it. (tests/test_kubeflow_local_e2e.py runs a
compiled spec.)

Goldens: tests/golden/kubeflow/<target>/<family>.yaml is each family's spec
compiled with the fixed arguments below, so that any change to the spec shows up in
review. After an intended change (or for a new family), regenerate and review
the diff:

    UPDATE_GOLDENS=1 .venv/bin/python -m pytest tests/test_kubeflow_runner.py
"""
import difflib
import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile

import kfp.components
import pytest
import yaml
from apache_beam.options import pipeline_options
from google.protobuf import json_format
from kfp.dsl import pipeline_task
from kfp.pipeline_spec import pipeline_spec_pb2
import tfx
from tfx.dsl.components.common import resolver as tfx_resolver
from tfx.utils import import_utils

import kubeflow_runner
from components import kfp_entrypoint
from pipeline import configs, pipeline
from runners import beam_presets, kubeflow_run_parameters, kubeflow_spec, quantities, roots
from runners.layout import OutputLayout
from tests.test_job_servers import preset_args

REPO_ROOT = configs.REPO_ROOT
GOLDEN_DIR = os.path.join(REPO_ROOT, "tests", "golden", "kubeflow")
FAMILIES = sorted(configs.FAMILIES)
IMAGE = "registry.example.com/ml/tfx-model-factory:test"
PIPELINE_ROOT = "gs://kfp-bucket/artifacts"
DATA_ROOT = "gs://kfp-bucket/datasets"
SERVING_ROOT = "gs://kfp-bucket/serving"
TFLITE_ROOT = "s3://kfp-bucket/tflite"
BASE_ARGS = ["--image", IMAGE, "--pipeline-root", PIPELINE_ROOT, "--data-root", DATA_ROOT,
             "--serving-root", SERVING_ROOT, "--tflite-root", TFLITE_ROOT]
TARGETS = kubeflow_spec.TARGETS
# The image's entrypoint wrapper around TFX's kubeflow_v2_run_executor.
RUN_EXECUTOR = ["python", "-m", "components.kfp_entrypoint"]
SPEC_FLAGS = (kfp_entrypoint.INPUTS_SPEC_FLAG, kfp_entrypoint.OUTPUTS_SPEC_FLAG)
# tfx/orchestration/kubeflow/v2/step_builder.py splits a LatestBlessedModelStrategy
# Resolver into two MLMD queries: the latest blessing, then the model it blessed.
BLESSING_QUERY_SUFFIX = "-model-blessing-resolver"
MODEL_QUERY_SUFFIX = "-model-resolver"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
  """compiled(family, target) -> (path, text, PipelineSpec), compiled once
  per family and target through the runner's CLI entry point with BASE_ARGS."""
  cache = {}

  def compile_family(family, target=kubeflow_spec.KFP):
    if (family, target) not in cache:
      path = str(tmp_path_factory.mktemp("kubeflow") / f"{family}.yaml")
      assert kubeflow_runner.main(["--model", family, "--target", target, *BASE_ARGS,
                                   "--output", path]) == 0
      with open(path, encoding="utf-8") as f:
        text = f.read()
      # Strict parse: an unknown or mistyped field fails here.
      spec = json_format.ParseDict(yaml.safe_load(text), pipeline_spec_pb2.PipelineSpec())
      cache[(family, target)] = (path, text, spec)
    return cache[(family, target)]
  return compile_family


def _spec_dict(family, *extra_args):
  args = kubeflow_runner.parse_args(["--model", family, *BASE_ARGS, *extra_args,
                                     "--output", "unused.yaml"])
  return kubeflow_runner.compile_pipeline(args)


def _task_edges(spec):
  """(upstream, downstream) pairs: declared dependencies and artifact
  producers, but for the span resolution every spec has before its ExampleGen
  (tested on its own)."""
  edges = set()
  for name, task in spec.root.dag.tasks.items():
    edges.update((dep, name) for dep in task.dependent_tasks
                 if dep != kubeflow_run_parameters.RESOLUTION_TASK)
    edges.update((a.task_output_artifact.producer_task, name)
                 for a in task.inputs.artifacts.values())
  return edges


def _param(spec, task, name):
  """A task's constant string parameter (schema 2.1: runtimeValue.constant)."""
  return spec.root.dag.tasks[task].inputs.parameters[name].runtime_value.constant.string_value


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_spec_loads_in_kfp_as_written(compiled, family, target):
  path, _, spec = compiled(family, target)
  component = kfp.components.load_component_from_file(path)
  assert component.name == configs.FAMILIES[family].pipeline_name
  assert component.pipeline_spec == spec
  assert spec.default_pipeline_root == PIPELINE_ROOT
  assert spec.schema_version == "2.1.0"


def _local_pipeline(family, **options):
  """A local run's pipeline, built as local_runner.py builds it (every output wired)."""
  return pipeline.create_pipeline(**roots.pipeline_arguments(
      configs.FAMILIES[family], roots.local_roots(OutputLayout("/outputs")),
      beam_pipeline_args=[], **options))


def _edges_of(components):
  return {(up.id, c.id) for c in components for up in c.upstream_nodes}


@pytest.mark.parametrize("family", FAMILIES)
def test_kfp_task_graph_is_the_local_pipeline_with_the_served_baseline(compiled, family):
  _, _, spec = compiled(family, kubeflow_spec.KFP)
  local = _local_pipeline(family, baseline_strategy=None, kubeflow_ui_artifacts=True)
  assert set(spec.root.dag.tasks) == {c.id for c in local.components} | {
      kubeflow_run_parameters.RESOLUTION_TASK}
  assert {"TFLiteExporter", "EvalReport", "served_baseline"} <= set(spec.root.dag.tasks)
  assert _task_edges(spec) == _edges_of(local.components)


@pytest.mark.parametrize("family", FAMILIES)
def test_vertex_task_graph_is_the_local_pipeline_with_tfx_resolver_queries(compiled, family):
  _, _, spec = compiled(family, kubeflow_spec.VERTEX)
  # With the local baseline strategy.
  local = _local_pipeline(family, kubeflow_ui_artifacts=True)
  (resolver,) = [c for c in local.components if isinstance(c, tfx_resolver.Resolver)]
  model_query, blessing_query = resolver.id + MODEL_QUERY_SUFFIX, resolver.id + BLESSING_QUERY_SUFFIX
  task_of = {c.id: c.id for c in local.components}
  task_of[resolver.id] = model_query
  local_edges = _edges_of(local.components)
  # The one intended difference: locally the resolver takes the candidate to
  # exclude it; on Vertex it queries MLMD and depends on no task.
  into_resolver = {e for e in local_edges if e[1] == resolver.id}
  assert into_resolver == {("Trainer", resolver.id)}
  expected = {(task_of[u], task_of[d]) for u, d in local_edges - into_resolver}
  expected.add((blessing_query, model_query))

  assert set(spec.root.dag.tasks) == (set(task_of.values()) | {
      blessing_query, kubeflow_run_parameters.RESOLUTION_TASK})
  assert "TFLiteExporter" in spec.root.dag.tasks
  assert _task_edges(spec) == expected


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_only_the_evaluator_reads_the_eval_split(compiled, family, target):
  """Transform analyses train and transforms train + validation; the Trainer
  trains on train and validates on validation; the Evaluator reads eval."""
  _, _, spec = compiled(family, target)

  def param(task, name):
    return json.loads(_param(spec, task, name))

  assert param("Transform", "splits_config") == {
      "analyze": ["train"], "transform": ["train", "validation"]}
  assert param("Trainer", "train_args")["splits"] == ["train"]
  assert param("Trainer", "eval_args")["splits"] == ["validation"]
  assert param("Evaluator", "example_splits") == ["eval"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_gate_orders_transform_and_evaluator_orders_pusher(compiled, family, target):
  _, _, spec = compiled(family, target)
  tasks = spec.root.dag.tasks
  # add_upstream_node: a pure ordering edge, no artifact flows from the gate.
  assert "AnomaliesGate" in tasks["Transform"].dependent_tasks
  assert all(a.task_output_artifact.producer_task != "AnomaliesGate"
             for a in tasks["Transform"].inputs.artifacts.values())
  gate_input = tasks["AnomaliesGate"].inputs.artifacts["anomalies"].task_output_artifact
  assert (gate_input.producer_task, gate_input.output_artifact_key) == (
      "ExampleValidator", "anomalies")
  assert "Evaluator" in tasks["Pusher"].dependent_tasks
  blessing = tasks["Pusher"].inputs.artifacts["model_blessing"].task_output_artifact
  assert (blessing.producer_task, blessing.output_artifact_key) == ("Evaluator", "blessing")
  baseline = tasks["Evaluator"].inputs.artifacts["baseline_model"].task_output_artifact
  assert (baseline.producer_task, baseline.output_artifact_key) == (
      ("served_baseline", "baseline") if target == kubeflow_spec.KFP
      else ("baseline_resolver" + MODEL_QUERY_SUFFIX, "model"))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_report_reaches_the_ui_as_the_html_and_metrics_types_it_renders(
    compiled, family, target):
  _, _, spec = compiled(family, target)
  outputs = spec.components["KubeflowUiArtifacts"].output_definitions.artifacts
  assert {k: (v.artifact_type.schema_title, v.artifact_type.schema_version)
          for k, v in outputs.items()} == {"html": ("system.HTML", "0.0.1"),
                                           "metrics": ("system.Metrics", "0.0.1")}
  report = spec.root.dag.tasks["KubeflowUiArtifacts"].inputs.artifacts["report"]
  assert report.task_output_artifact.producer_task == "EvalReport"


@pytest.mark.parametrize("family", FAMILIES)
def test_kfp_target_holds_container_executors_only_and_never_caches_the_baseline(
    compiled, family):
  _, _, spec = compiled(family, kubeflow_spec.KFP)
  executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
  assert {kind for e in executors.values() for kind in e} <= {"container", "importer"}
  tasks = spec.root.dag.tasks
  # Both read state outside the pipeline (the serving directory, the data's listing).
  uncached = {"served_baseline", kubeflow_run_parameters.RESOLUTION_TASK}
  assert not any(tasks[n].caching_options.enable_cache for n in uncached)
  assert all(t.caching_options.enable_cache for n, t in tasks.items() if n not in uncached)
  assert _param(spec, "served_baseline", "serving_dir") == f"{SERVING_ROOT}/{family}"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_task_runs_in_the_image_with_code_the_image_holds(compiled, family, target):
  _, _, spec = compiled(family, target)
  config = configs.FAMILIES[family]
  executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
  resolvers = {label for label, e in executors.items() if "resolver" in e}
  assert resolvers == (set() if target == kubeflow_spec.KFP else {
      f"baseline_resolver{s}_executor" for s in (MODEL_QUERY_SUFFIX, BLESSING_QUERY_SUFFIX)})
  declared_outputs = {c["executorLabel"]: c.get("outputDefinitions", {}).get("artifacts", {})
                      for c in json_format.MessageToDict(spec)["components"].values()}
  classes = {}
  resolution = executors.pop(f"{kubeflow_run_parameters.RESOLUTION_TASK}_executor")
  assert resolution["container"]["image"] == IMAGE
  assert resolution["container"]["command"] == [
      "python", "-m", kubeflow_run_parameters.RESOLUTION_MODULE]
  assert callable(importlib.import_module(kubeflow_run_parameters.RESOLUTION_MODULE).main)
  for label, executor in executors.items():
    if label in resolvers:
      continue
    container = executor["container"]
    assert container["image"] == IMAGE and container["command"] == RUN_EXECUTOR, label
    class_path = container["args"][container["args"].index("--executor_class_path") + 1]
    # The wrapper gets the component's declared outputs, to type what it writes.
    outputs = json.loads(container["args"][
        container["args"].index(kfp_entrypoint.OUTPUTS_SPEC_FLAG) + 1])
    assert outputs == {"artifacts": declared_outputs[label]}, label
    classes[label] = import_utils.import_class_by_path(class_path)
  # The Python function component runs as its generated executor class.
  assert classes["AnomaliesGate_executor"].__module__ == "components.anomalies_gate"
  assert _param(spec, "Trainer", "run_fn") == config.run_fn
  assert _param(spec, "Transform", "preprocessing_fn") == config.preprocessing_fn
  for dotted in (config.run_fn, config.preprocessing_fn):
    assert callable(import_utils.import_func_from_module(*dotted.rsplit(".", 1)))
  # Custom artifact types are re-created at run time by importing their title.
  titles = {yaml.safe_load(d["artifactType"]["instanceSchema"])["title"]
            for c in json_format.MessageToDict(spec)["components"].values()
            for side in ("inputDefinitions", "outputDefinitions")
            for d in c.get(side, {}).get("artifacts", {}).values()
            if "instanceSchema" in d["artifactType"]}
  for title in titles - {t for t in titles if t.startswith("tfx.")}:
    assert import_utils.import_class_by_path(title).TYPE_NAME == title


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_paths_are_the_images_and_the_clusters_only(compiled, family, target):
  _, text, spec = compiled(family, target)
  config = configs.FAMILIES[family]
  for local in {REPO_ROOT, os.getcwd(), os.path.expanduser("~") + "/", "/tmp", "/work"}:
    assert local not in text
  schema = _param(spec, "ImportSchemaGen", "schema_file")
  assert schema == f"/pipeline/pipeline/schemas/{family}/schema.pbtxt"
  assert os.path.isfile(os.path.join(REPO_ROOT, os.path.relpath(schema, "/pipeline")))
  (example_gen,) = [t for t in spec.root.dag.tasks if t.endswith("ExampleGen")]
  assert _param(spec, example_gen, "input_base") == f"{DATA_ROOT}/{config.data_subdir}"
  destination = json.loads(_param(spec, "Pusher", "push_destination"))
  assert destination["filesystem"]["base_directory"] == f"{SERVING_ROOT}/{family}"
  assert _param(spec, "TFLiteExporter", "tflite_dir") == f"{TFLITE_ROOT}/{family}"


PRESETS = {
    "direct": ([], ["--runner=FnApiRunner", "--direct_running_mode=in_memory"]),
    "dataflow": (
        ["--beam-preset", "dataflow", "--gcp-project", "ml-prod", "--gcp-region",
         "europe-west4", "--temp-location", "gs://kfp-bucket/beam-tmp"],
        ["--runner=DataflowRunner", "--project=ml-prod", "--region=europe-west4",
         "--temp_location=gs://kfp-bucket/beam-tmp", f"--sdk_container_image={IMAGE}"]),
    "flink-master": (
        ["--beam-preset", "flink", "--flink-master", "flink-jobmanager:8081"],
        ["--runner=FlinkRunner", "--flink_master=flink-jobmanager:8081",
         "--environment_type=EXTERNAL", "--environment_config=localhost:50000",
         "--environment_cache_millis=60000"]),
    "flink-job-endpoint": (
        ["--beam-preset", "flink", "--job-endpoint", "beam-job-server:8099"],
        ["--runner=PortableRunner", "--job_endpoint=beam-job-server:8099",
         "--environment_type=EXTERNAL", "--environment_config=localhost:50000",
         "--environment_cache_millis=60000"]),
    "spark-master": (
        ["--beam-preset", "spark", "--spark-master-url", "spark://spark-master:7077"],
        ["--runner=SparkRunner", "--spark_master_url=spark://spark-master:7077",
         "--environment_type=EXTERNAL", "--environment_config=localhost:50000",
         "--environment_cache_millis=60000"]),
}


def test_a_local_run_ships_the_project_to_dataflow_workers_as_its_setup_file_builds_it(
    tmp_path):
  """Without the pipeline image, Dataflow's workers get the project as Beam
  builds it (`python setup.py sdist`): the setup.py shim over pyproject.toml's
  metadata, with the modules, components and curated schemas."""
  beam_args = beam_presets.beam_pipeline_args(preset_args(*PRESETS["dataflow"][0][1:]))
  assert f"--setup_file={os.path.join(REPO_ROOT, 'setup.py')}" in beam_args
  assert not [arg for arg in beam_args if arg.startswith("--sdk_container_image")]
  result = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          check=False)
  assert result.returncode == 0, result.stderr
  (sdist,) = tmp_path.glob("tfx-model-factory-*.tar.gz")
  with tarfile.open(sdist) as archive:
    names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    requires = archive.extractfile(f"{sdist.name[:-len('.tar.gz')]}/"
                                   "tfx_model_factory.egg-info/requires.txt").read().decode()
  assert {"modules/cnn/model.py", "components/job_servers.py", "runners/beam_presets.py",
          "pipeline/schemas/cnn/schema.pbtxt", "components/flink_conf/flink-conf.yaml"} <= names
  assert "tfx[kfp]==1.16.0" in requires.splitlines()


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("family", FAMILIES)
def test_beam_args_of_each_preset_reach_every_executor(family, preset):
  flags, expected = PRESETS[preset]
  spec = _spec_dict(family, *flags, "--beam-arg=--num_workers=3")
  expected = expected + ["--num_workers=3"]
  for label, executor in spec["deploymentSpec"]["executors"].items():
    # The span resolution lists a directory: no Beam.
    if "container" in executor and not label.startswith(kubeflow_run_parameters.RESOLUTION_TASK):
      container = executor["container"]
      hooks = [container["args"]] + [h["args"] for h in container.get("lifecycle", {}).values()]
      for args in hooks:
        # The task's inputs (and outputs) spec follow its input, then Beam's.
        at = args.index("{{$}}") + 1
        while args[at] in SPEC_FLAGS:
          at += 2
        assert args[at:] == expected, label


def test_extra_beam_arg_overrides_a_preset_value():
  args = kubeflow_runner.parse_args(
      ["--model", FAMILIES[0], *BASE_ARGS, "--output", "x.yaml", "--beam-preset", "flink",
       "--job-endpoint", "beam-job-server:8099",
       "--beam-arg=--environment_type=EXTERNAL", "--beam-arg=--environment_config=localhost:50000"])
  portable = pipeline_options.PipelineOptions(args.beam_args).view_as(
      pipeline_options.PortableOptions)
  assert (portable.environment_type, portable.environment_config) == (
      "EXTERNAL", "localhost:50000")


@pytest.mark.parametrize("flags, message", [
    (["--beam-preset", "dataflow", "--gcp-region", "europe-west4"],
     "--beam-preset dataflow needs --gcp-project, --temp-location"),
    (["--beam-preset", "dataflow", "--gcp-project", "p", "--gcp-region", "r",
      "--temp-location", "/tmp/beam"], "--temp-location must be a gs:// folder"),
    (["--beam-preset", "flink"], "on Kubeflow needs --flink-master or --job-endpoint"),
    (["--beam-preset", "flink", "--flink-master", "a:1", "--job-endpoint", "b:2"],
     "takes one of --flink-master or --job-endpoint, not both"),
    (["--beam-preset", "spark"], "on Kubeflow needs --spark-master-url or --job-endpoint"),
    (["--gcp-project", "p"], "--gcp-project only applies to --beam-preset dataflow"),
    (["--beam-preset", "dataflow", "--gcp-project", "p", "--gcp-region", "r", "--temp-location",
      "gs://b/t", "--job-endpoint", "h:1"],
     "--job-endpoint only applies to --beam-preset flink or spark"),
    (["--data-root", "/home/me/data"], "--data-root must be a URI the cluster can reach"),
    (["--serving-root", "serving"], "--serving-root must be a URI the cluster can reach"),
    (["--tflite-root", "/tmp/tflite"], "--tflite-root must be a URI the cluster can reach"),
    (["--target", "argo"], "invalid choice: 'argo'"),
    (["--trainer-memory", "0"], "argument --trainer-memory: must be positive, got '0'"),
    (["--trainer-memory", "8GB"],
     "argument --trainer-memory: '8GB' is not a Kubernetes memory quantity (e.g. 16Gi, 8G"),
    (["--beam-cpu", "2 cores"],
     "argument --beam-cpu: '2 cores' is not a Kubernetes CPU quantity (e.g. 2, 0.5 or 500m)"),
    (["--trainer-gpu", "0"], "--trainer-gpu must be positive"),
    # `make kubeflow` without IMAGE= / KFP_ROOT= passes the Makefile's placeholders.
    (["--image", "gcr.io/YOUR_PROJECT/tfx-model-factory:latest"],
     "--image 'gcr.io/YOUR_PROJECT/tfx-model-factory:latest' still holds a placeholder"),
    (["--pipeline-root", "gs://YOUR_BUCKET/tfx-model-factory/pipeline_root"],
     "--pipeline-root 'gs://YOUR_BUCKET/tfx-model-factory/pipeline_root' still holds"),
])
def test_bad_arguments_exit_2_naming_the_problem(capsys, flags, message):
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_runner.parse_args(["--model", FAMILIES[0], *BASE_ARGS, *flags, "--output", "x.yaml"])
  assert exit_info.value.code == 2
  assert message in capsys.readouterr().err


@pytest.mark.parametrize("quantity", ["16Gi", "8G", "512Mi", "1T", "3Ki", "2M"])
def test_memory_quantities_convert_as_kfp_converts_them(quantity):
  """The GB KFP's own SDK stores for a task's memory (PipelineTask.set_memory_limit)."""
  kfp_gb = pipeline_task.PipelineTask._validate_memory_request_limit(  # pylint: disable=protected-access
      None, quantity)
  assert quantities.memory_gb(quantity) == pytest.approx(kfp_gb, rel=1e-12)


@pytest.mark.parametrize("quantity, gb", [("16", 16.0), ("1.5", 1.5), ("0.5Gi", 2**29 / 1e9),
                                          ("250k", 2.5e-4)])
def test_plain_numbers_stay_gb_and_fractions_and_lowercase_kilo_are_taken(quantity, gb):
  assert quantities.memory_gb(quantity) == pytest.approx(gb, rel=1e-12)


@pytest.mark.parametrize("quantity, cores", [("2", 2.0), ("0.5", 0.5), ("500m", 0.5),
                                             ("1500m", 1.5)])
def test_cpu_quantities_are_cores_or_millicores(quantity, cores):
  assert quantities.cpu_cores(quantity) == cores


# Kubernetes quantities, as a Kubeflow user writes them (runners/quantities.py).
RESOURCE_ARGS = ["--trainer-cpu", "4", "--trainer-memory", "16Gi", "--trainer-gpu", "1",
                 "--beam-cpu", "500m", "--beam-memory", "8G"]


def test_resources_become_requests_and_limits_of_the_trainer_and_beam_tasks():
  spec = _spec_dict("cnn", *RESOURCE_ARGS)
  executors = spec["deploymentSpec"]["executors"]
  label_of = {task: spec["components"][t["componentRef"]["name"]]["executorLabel"]
              for task, t in spec["root"]["dag"]["tasks"].items()}
  asked = {task: executors[label]["container"].get("resources")
           for task, label in label_of.items()}
  # KFP's spec holds cores and GB (10^9 bytes), as KFP's SDK converts them.
  assert asked.pop("Trainer") == {
      "cpuLimit": 4.0, "cpuRequest": 4.0, "memoryLimit": 16 * 2**30 / 1e9,
      "memoryRequest": 16 * 2**30 / 1e9, "accelerator": {"type": "nvidia.com/gpu", "count": 1}}
  for task in ("TFRecordExampleGen", "StatisticsGen", "Transform", "Evaluator"):
    assert asked.pop(task) == {"cpuRequest": 0.5, "memoryRequest": 8.0}, task
  assert set(asked.values()) == {None}
  # The spec with resources parses strictly, as KFP reads it.
  json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())


def _normalised(text):
  """The spec without what changes with no change to the pipeline: the TFX version."""
  return re.sub(r"(?m)^sdkVersion: .*$", "sdkVersion: <normalised>", text)


def _compiled_with_resources(tmp_path):
  path = str(tmp_path / "cnn-resources.yaml")
  assert kubeflow_runner.main(["--model", "cnn", *BASE_ARGS, *RESOURCE_ARGS,
                               "--output", path]) == 0
  with open(path, encoding="utf-8") as f:
    return f.read()


@pytest.mark.parametrize("target, family", [
    *[(t, f) for t in TARGETS for f in FAMILIES], (kubeflow_spec.KFP, "cnn-resources")])
def test_spec_matches_golden(compiled, family, target, tmp_path):
  actual = _normalised(_compiled_with_resources(tmp_path) if family == "cnn-resources"
                       else compiled(family, target)[1])
  golden = os.path.join(GOLDEN_DIR, target, f"{family}.yaml")
  if os.environ.get("UPDATE_GOLDENS") == "1":
    os.makedirs(os.path.dirname(golden), exist_ok=True)
    with open(golden, "w", encoding="utf-8") as f:
      f.write(actual)
  assert os.path.isfile(golden), (
      f"no golden spec for family {family!r}; create it with UPDATE_GOLDENS=1 (module docstring)")
  with open(golden, encoding="utf-8") as f:
    expected = f.read()
  diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                      f"golden/{target}/{family}.yaml", "compiled", n=2))
  assert not diff, f"compiled spec differs from the golden (UPDATE_GOLDENS=1 if intended):\n{diff[:6000]}"


@pytest.mark.integration
def test_cli_in_a_fresh_process_writes_identical_bytes(compiled, tmp_path):
  """Determinism across processes (hash seeds, import order), as `make kubeflow` runs."""
  family = FAMILIES[0]
  output = tmp_path / "spec.yaml"
  env = dict(os.environ, PYTHONHASHSEED="1234", TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run(
      [sys.executable, os.path.join(REPO_ROOT, "kubeflow_runner.py"), "--model", family,
       *BASE_ARGS, "--output", str(output)],
      cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert output.read_text(encoding="utf-8") == compiled(family)[1]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_image_layout_is_the_one_the_spec_assumes(compiled, family, target):
  _, _, spec = compiled(family, target)
  with open(os.path.join(REPO_ROOT, "Dockerfile"), encoding="utf-8") as f:
    dockerfile = f.read()
  root = kubeflow_runner.IMAGE_PROJECT_ROOT
  assert re.search(rf"(?m)^FROM tensorflow/tfx:{re.escape(tfx.__version__)}$", dockerfile)
  assert re.search(rf"(?m)^WORKDIR {root}$", dockerfile)
  assert re.search(rf"(?m)^COPY \. {root}$", dockerfile)
  assert f"PYTHONPATH={root} " in dockerfile and "TF_USE_LEGACY_KERAS=1" in dockerfile
  # .dockerignore drops everything but what the spec imports or reads in the image.
  executors = json_format.MessageToDict(spec.deployment_spec)["executors"].values()
  containers = [e["container"] for e in executors if "container" in e]
  dotted = [c["command"][2] for c in containers if c["command"][:2] == ["python", "-m"]]
  dotted += [c["args"][c["args"].index("--executor_class_path") + 1] for c in containers
             if "--executor_class_path" in c["args"]]
  dotted += [_param(spec, "Trainer", "run_fn"), _param(spec, "Transform", "preprocessing_fn"),
             os.path.relpath(_param(spec, "ImportSchemaGen", "schema_file"), root)]
  packages = {re.split(r"[./]", name)[0] for name in dotted} - {"tfx"}
  with open(os.path.join(REPO_ROOT, ".dockerignore"), encoding="utf-8") as f:
    ignore = [line.strip() for line in f if line.strip() and not line.startswith("#")]
  assert ignore[0] == "*"
  assert packages <= {p[1:].rstrip("/") for p in ignore if p.startswith("!")}
  assert packages >= {"components", "modules", "pipeline"}
  # Custom artifact types are imported by their spec title (tfx_model_factory.*).
  assert "!tfx_model_factory/" in ignore


# What the pipeline image's base (tensorflow/tfx) already holds of the
# project's dependencies; the Dockerfile installs the rest.
BASE_IMAGE_PROVIDES = {"tfx", "tensorflow", "tf-keras", "dill"}


def test_the_image_installs_every_dependency_its_base_lacks_at_the_locked_version():
  """The Dockerfile installs with --no-deps (the base image's stack stays):
  each dependency of the project's metadata (pyproject.toml, as installed)
  the base lacks, and what those need that TFX does not, is pip-installed
  there at the version constraints.txt locks; the metadata goes in too."""
  def name_of(requirement):
    return re.split(r"[\[=<>~!; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")

  declared = {name_of(r) for r in importlib.metadata.requires("tfx-model-factory")
              if "extra ==" not in r}
  with open(os.path.join(REPO_ROOT, "constraints.txt"), encoding="utf-8") as f:
    locked = dict(line.strip().split("==") for line in f if "==" in line)
  with open(os.path.join(REPO_ROOT, "Dockerfile"), encoding="utf-8") as f:
    installed = dict(re.findall(r"([A-Za-z][\w.-]*)==([\w.]+)", f.read()))
  needed = (declared - BASE_IMAGE_PROVIDES) | {"dm-tree"}  # dm-tree: TFMO's, not TFX's.
  assert {name: installed.get(name) for name in needed} == {
      name: locked[name] for name in needed}
  with open(os.path.join(REPO_ROOT, ".dockerignore"), encoding="utf-8") as f:
    assert {"!pyproject.toml", "!setup.py"} <= {line.strip() for line in f}


@pytest.mark.parametrize("target", TARGETS)
def test_span_window_and_drift_acceptance_are_run_parameters_resolved_before_the_example_gen(
    compiled, target):
  """One spec for every day: the run gives the span, window and drift
  acceptance; an uncached task resolves the window and hands the ExampleGen
  its span, window and input fingerprint by value (KFP's cache key)."""
  _, _, spec = compiled("cnn", target)
  declared = spec.root.input_definitions.parameters
  assert {name: declared[name].default_value.number_value
          for name in kubeflow_run_parameters.RUN_PARAMETERS} == {
              "span": 0, "window": 0, "accept_drift": 0}
  resolution = spec.root.dag.tasks[kubeflow_run_parameters.RESOLUTION_TASK]
  assert not resolution.caching_options.enable_cache
  assert {name: p.component_input_parameter for name, p in
          resolution.inputs.parameters.items()} == {"span": "span", "window": "window"}
  example_gen = spec.root.dag.tasks["TFRecordExampleGen"]
  resolved = {name: (p.task_output_parameter.producer_task,
                     p.task_output_parameter.output_parameter_key)
              for name, p in example_gen.inputs.parameters.items()
              if p.HasField("task_output_parameter")}
  assert resolved == {
      "requested_span": ("SpanResolution", "span"), "window": ("SpanResolution", "window"),
      "full_window": ("SpanResolution", "full_window"),
      "input_fingerprint": ("SpanResolution", "fingerprint")}
  gate = spec.root.dag.tasks["AnomaliesGate"]
  assert gate.inputs.parameters["accept_drift"].component_input_parameter == "accept_drift"
