"""Compiles one model family's pipeline into a Kubeflow Pipelines v2 spec.

    python kubeflow_runner.py --model cnn --image IMAGE --pipeline-root URI \\
        --data-root URI --serving-root URI [--beam-preset direct|dataflow|flink \\
        ...] [--beam-arg=--flag=value ...] --output build/kubeflow/cnn.yaml

Every task runs in IMAGE (see Dockerfile), which holds this project under
/pipeline: module functions are named by dotted name and the curated schema by
its in-image path, so nothing of the compiling machine ends up in the spec.
Data is read from <data-root>/<data subdir>, blessed models are pushed to
<serving-root>/<family> (runners/roots.py, as for a local run). The spec has
no TFLite export yet: the exporter publishes to a local directory only.
Exit status: 0 written, 2 bad arguments.
"""
import argparse
import os
import posixpath
import re
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# After the Keras switch above.
from pipeline import configs  # noqa: E402
from runners import beam_presets, roots  # noqa: E402

# Where the Dockerfile copies the project inside the image.
IMAGE_PROJECT_ROOT = "/pipeline"
IMAGE_SCHEMA_ROOT = posixpath.join(
    IMAGE_PROJECT_ROOT, os.path.relpath(configs.SCHEMA_ROOT, configs.REPO_ROOT))
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]")


def parse_args(argv):
  """Refuses, before compiling, roots the cluster cannot reach and incomplete presets."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, choices=sorted(configs.FAMILIES),
                      help="model family to compile")
  parser.add_argument("--image", required=True, help="pipeline image (see Dockerfile)")
  for root in ("pipeline-root", "data-root", "serving-root"):
    parser.add_argument(f"--{root}", required=True, help="URI such as gs://bucket/path")
  parser.add_argument("--output", required=True, help="PipelineSpec YAML to write")
  beam_presets.add_arguments(parser)
  args = parser.parse_args(argv)
  for root in ("pipeline_root", "data_root", "serving_root"):
    if not _URI.match(getattr(args, root)):
      parser.error(f"--{root.replace('_', '-')} must be a URI the cluster can reach "
                   f"(gs://, s3://, ...), not a path of this machine: {getattr(args, root)!r}")
  try:
    args.beam_args = beam_presets.beam_pipeline_args(args, worker_image=args.image)
  except beam_presets.BeamPresetError as error:
    parser.error(str(error))
  return args


def compile_pipeline(args) -> dict:
  """The PipelineSpec of `args.model`, as the dict that is written out.

  The pipeline root becomes the spec's defaultPipelineRoot, so a run created
  from the file needs no pipeline_root of its own (it may still override it);
  TFX's runner would put it only into the PipelineJob it writes as JSON.
  """
  from tfx import v1 as tfx  # pylint: disable=import-outside-toplevel
  from pipeline import pipeline  # pylint: disable=import-outside-toplevel

  family = configs.get_family(args.model)
  cluster_roots = roots.Roots(
      pipeline_root=args.pipeline_root, data_root=args.data_root,
      serving_root=args.serving_root, schema_root=IMAGE_SCHEMA_ROOT,
      # The TFLiteExporter publishes with local file operations only.
      tflite_root=None)
  tfx_pipeline = pipeline.create_pipeline(**roots.pipeline_arguments(
      family, cluster_roots, beam_pipeline_args=args.beam_args,
      # The KFP v2 compiler takes only TFX's own strategies; unlike the local
      # one it may return the candidate itself (components/baseline_strategy.py).
      baseline_strategy=tfx.dsl.experimental.LatestBlessedModelStrategy))
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=args.image))
  spec = runner.run(tfx_pipeline, write_out=False)["pipelineSpec"]
  spec["defaultPipelineRoot"] = args.pipeline_root
  return spec


def write_spec(spec: dict, path: str) -> None:
  """Writes the spec as KFP's YAML package, keys sorted so that recompiling
  an unchanged pipeline gives the same bytes."""
  import yaml
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", encoding="utf-8") as out:
    out.write(f"# PIPELINE DEFINITION\n# Name: {spec['pipelineInfo']['name']}\n")
    yaml.safe_dump(spec, out, sort_keys=True)


def main(argv=None) -> int:
  args = parse_args(argv)
  write_spec(compile_pipeline(args), args.output)
  print(f"Wrote {args.output} ({args.model}, image {args.image})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
