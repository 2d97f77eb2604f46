"""Compiles one model family's pipeline into a Kubeflow Pipelines v2 spec.

    python kubeflow_runner.py --model cnn [--target kfp|vertex] --image IMAGE \\
        --pipeline-root URI --data-root URI --serving-root URI --tflite-root URI \\
        [--beam-preset direct|dataflow|flink|spark ...] [--beam-arg=--flag=value ...] \\
        [--trainer-cpu CPU] [--trainer-memory MEMORY] [--trainer-gpu N [--gpu-type T]] \\
        [--beam-cpu CPU] [--beam-memory MEMORY] --output build/kubeflow/cnn.yaml

`--target kfp` (the default) is for open-source Kubeflow Pipelines 2.x, which
runs no TFX resolvers: the Evaluator's baseline is the newest version under
the serving root. `--target vertex` is for Vertex AI Pipelines and keeps
TFX's resolver (runners/kubeflow_spec.py).

Every task runs in IMAGE (see Dockerfile), which holds this project under
/pipeline: module functions are named by dotted name and the curated schema by
its in-image path, so nothing of the compiling machine ends up in the spec.
Data is read from <data-root>/<data subdir>; blessed models are pushed to
<serving-root>/<family> and exported to <tflite-root>/<family> (the same
roots-to-arguments builder as a local run, runners/roots.py).
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
from components.quiet_startup import quiet_startup  # noqa: E402
from pipeline import configs  # noqa: E402
from runners import beam_presets, kubeflow_spec, preflight, quantities, roots  # noqa: E402

# Where the Dockerfile copies the project inside the image.
IMAGE_PROJECT_ROOT = "/pipeline"
IMAGE_SCHEMA_ROOT = posixpath.join(
    IMAGE_PROJECT_ROOT, os.path.relpath(configs.SCHEMA_ROOT, configs.REPO_ROOT))
ROOTS = ("pipeline-root", "data-root", "serving-root", "tflite-root")
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]")
# The Makefile's defaults (gcr.io/YOUR_PROJECT/..., gs://YOUR_BUCKET/...) start
# so: a spec compiled with them would point at nothing.
PLACEHOLDER = "YOUR_"


def parse_args(argv):
  """Refuses, before compiling, roots the cluster cannot reach and incomplete presets."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True, choices=sorted(configs.FAMILIES),
                      help="model family to compile")
  parser.add_argument("--target", choices=kubeflow_spec.TARGETS, default=kubeflow_spec.KFP,
                      help="kfp: open-source Kubeflow Pipelines 2.x; vertex: Vertex AI "
                      "Pipelines (default: %(default)s)")
  parser.add_argument("--image", required=True, help="pipeline image (see Dockerfile)")
  for root in ROOTS:
    parser.add_argument(f"--{root}", required=True, help="URI such as gs://bucket/path")
  parser.add_argument("--output", required=True, help="PipelineSpec YAML to write")
  beam_presets.add_arguments(parser)
  preflight.add_compression_argument(parser)
  group = parser.add_argument_group("resources", "what tasks ask the cluster for")
  group.add_argument("--trainer-cpu", type=quantities.cpu_cores,
                     help=f"Trainer CPU (request = limit): {quantities.CPU_EXAMPLES}")
  group.add_argument("--trainer-memory", type=quantities.memory_gb,
                     help=f"Trainer memory (request = limit): {quantities.MEMORY_EXAMPLES}")
  group.add_argument("--trainer-gpu", type=int, help="Trainer accelerators")
  group.add_argument("--gpu-type", default=kubeflow_spec.DEFAULT_GPU_TYPE,
                     help="accelerator type (default: %(default)s; Vertex: e.g. NVIDIA_TESLA_T4)")
  group.add_argument("--beam-cpu", type=quantities.cpu_cores,
                     help=f"CPU requested by each Beam task: {quantities.CPU_EXAMPLES}")
  group.add_argument("--beam-memory", type=quantities.memory_gb,
                     help=f"memory requested by each Beam task: {quantities.MEMORY_EXAMPLES}")
  args = parser.parse_args(argv)
  for option in ("image", *ROOTS):
    value = getattr(args, option.replace("-", "_"))
    if PLACEHOLDER in value:
      parser.error(f"--{option} {value!r} still holds a placeholder: pass your own "
                   "(make kubeflow IMAGE=gcr.io/<project>/tfx-model-factory:<tag> "
                   "KFP_ROOT=gs://<bucket>/tfx-model-factory)")
  for root in ROOTS:
    value = getattr(args, root.replace("-", "_"))
    if not _URI.match(value):
      parser.error(f"--{root} must be a URI the cluster can reach "
                   f"(gs://, s3://, ...), not a path of this machine: {value!r}")
  preflight.check_compression(parser, configs.get_family(args.model), args.compression)
  try:
    args.beam_args = beam_presets.beam_pipeline_args(args, worker_image=args.image)
    args.resources = kubeflow_spec.Resources(
        trainer_cpu=args.trainer_cpu, trainer_memory=args.trainer_memory,
        trainer_gpu=args.trainer_gpu, gpu_type=args.gpu_type,
        beam_cpu=args.beam_cpu, beam_memory=args.beam_memory)
  except (beam_presets.BeamPresetError, ValueError) as error:
    parser.error(str(error))
  return args


def compile_pipeline(args) -> dict:
  """The PipelineSpec of `args.model` for `args.target`, as a dict."""
  cluster_roots = roots.Roots(
      pipeline_root=args.pipeline_root, data_root=args.data_root,
      serving_root=args.serving_root, tflite_root=args.tflite_root,
      schema_root=IMAGE_SCHEMA_ROOT)
  return kubeflow_spec.compile_spec(configs.get_family(args.model), cluster_roots,
                                    args.target, args.image, args.beam_args,
                                    resources=args.resources, compression=args.compression)


def main(argv=None) -> int:
  args = parse_args(argv)
  kubeflow_spec.write_spec(compile_pipeline(args), args.output)
  print(f"Wrote {args.output} ({args.model}, target {args.target}, image {args.image})")
  return 0


if __name__ == "__main__":
  quiet_startup()
  sys.exit(main())
