"""tfx-model-factory: one TFX pipeline, three model families, served models."""
import setuptools

setuptools.setup(
    name="tfx-model-factory",
    version="0.1.0",
    description="TFX 1.16 pipeline for CNN, LSTM and two-tower models, "
    "pushed to TF Serving and TFLite.",
    license="Apache-2.0",
    python_requires=">=3.10,<3.11",
    packages=setuptools.find_packages(
        include=["modules*", "components*", "tfx_model_factory*", "pipeline*", "runners*"]),
    package_data={"pipeline": ["schemas/*/*.pbtxt"],
                  "components": ["job_server_locks/*.lock", "flink_conf/*.yaml"]},
    install_requires=[
        "tfx[kfp]==1.16.0",
        "tensorflow==2.16.2",
        "tf-keras==2.16.0",
        # s3:// (MinIO, KFP's artifact store): tf.io.gfile's filesystem, Beam's client.
        "tensorflow-io==0.37.1",
        "boto3",
        "dill",
        "matplotlib",  # eval report plots (components/eval_report), PNGs embedded in HTML
        # Pruning and quantization-aware training (modules/common/compression.py).
        "tensorflow-model-optimization",
    ],
    # pytest-xdist: `make test` runs the suite on every core (tests/conftest.py
    # keeps tests that share a pipeline run on one worker).
    # moto's server: the S3-compatible server the S3 end-to-end test starts.
    # ai-edge-litert: the LiteRT runtime apps use, which exported .tflite
    # files are checked to load and run under (besides tf.lite.Interpreter).
    extras_require={"test": ["pytest", "pytest-xdist", "moto[server]", "ai-edge-litert"]},
)
