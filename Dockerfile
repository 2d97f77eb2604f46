# The pipeline image: every task of the compiled Kubeflow spec runs in it, and
# Dataflow workers and the Beam worker pool beside Flink or Spark workers use it
# as their Beam SDK container.
#
#   docker build -t REGISTRY/tfx-model-factory:TAG . && docker push REGISTRY/tfx-model-factory:TAG
#
# The base image holds TFX 1.16 with the TensorFlow/Beam stack it was released
# with and the matching Beam SDK harness (/opt/apache/beam/boot, its entrypoint,
# kept here). The project is installed with --no-deps: resolving it under
# constraints.txt would swap that stack for this repo's development lock (another
# apache-beam, for one) and break the harness. The build instead proves that the
# image's stack imports every module function and component the spec names.
FROM tensorflow/tfx:1.16.0

# /pipeline is kubeflow_runner.IMAGE_PROJECT_ROOT: the spec names the curated
# schemas as /pipeline/pipeline/schemas/<family>/schema.pbtxt. PYTHONPATH makes
# module functions (modules.cnn.model.run_fn, ...) importable from any task's
# working directory; tf.keras must be Keras 2 for the family modules.
ENV PYTHONPATH=/pipeline \
    TF_USE_LEGACY_KERAS=1
WORKDIR /pipeline
COPY . /pipeline

# The project's dependencies (pyproject.toml) the base image lacks, at the
# versions constraints.txt locks (tests/test_kubeflow_runner.py keeps the two
# in step): matplotlib draws the evaluation report's plots
# (components/eval_report); tensorflow-io (the release built for TensorFlow
# 2.16) gives tf.io.gfile the s3:// filesystem for MinIO/S3 roots, and boto3
# gives Beam's S3 filesystem its client; TensorFlow Model Optimization (and
# its dm-tree) prunes and quantizes (modules/common/compression.py).
RUN python -m pip install --no-cache-dir matplotlib==3.10.9 tensorflow-io==0.37.1 boto3==1.44.8 \
    tensorflow-model-optimization==0.8.0 dm-tree==0.1.10 \
 && python -m pip install --no-cache-dir --no-deps -e /pipeline \
 && python -c "import importlib, os; from pipeline import configs, pipeline; import tfx_model_factory; \
fams = configs.FAMILIES.values(); \
[importlib.import_module(fn.rsplit('.', 1)[0]) for f in fams for fn in (f.run_fn, f.preprocessing_fn, f.tflite_adapter)]; \
assert all(os.path.isfile(f.schema_path()) for f in fams)"

# A Beam task compiled with --flink-master or --spark-master-url starts Beam's
# job server for that engine in its pod (components/kfp_entrypoint.py), from
# the jars pinned in components/job_server_locks/: Java and the jars are in the
# image, fetched and checked at build time, never in the middle of a run.
ENV TFX_MODEL_FACTORY_CACHE=/opt/tfx-model-factory/cache
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* \
 && python -m components.job_servers fetch
