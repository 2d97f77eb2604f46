"""End to end on S3: the CNN's Kubeflow spec (target kfp) with every root on
`s3://` (KFP's default artifact store is MinIO, an S3 server), executed task
by task against a real S3-compatible server started on localhost (moto's
standalone server), with credentials and endpoint from the standard AWS
environment variables only; the pushed model is read back through s3://. On
300 train / 100 eval digits and a 20-step model blessed by a floor of 0: what
is under test is storage, not the model."""
import glob
import json
import os
import subprocess
import sys

import boto3
import pytest
from moto.server import ThreadedMotoServer

from components import atomic_pusher, beam_s3_clients, job_servers
from pipeline import configs
from runners import beam_presets, kubeflow_spec, roots, spec_executor
from tests import e2e_helpers

pytestmark = pytest.mark.e2e
MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")
BUCKET = "kfp-artifacts"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
  """A local S3 server and the AWS environment every task reads it through."""
  port = job_servers.free_port()
  server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
  server.start()
  endpoint = f"http://127.0.0.1:{port}"
  env = {"AWS_ACCESS_KEY_ID": "minio-user", "AWS_SECRET_ACCESS_KEY": "minio-secret",
         "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,  # boto3 (Beam)
         "S3_ENDPOINT": endpoint, "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0"}  # tensorflow-io
  saved = {key: os.environ.get(key) for key in env}
  os.environ.update(env)
  try:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield boto3.client("s3")
  finally:
    server.stop()
    for key, value in saved.items():
      if value is None:
        os.environ.pop(key, None)
      else:
        os.environ[key] = value


@pytest.fixture(scope="module")
def s3_run(s3_server, tmp_path_factory):
  data_dir = e2e_helpers.write_small_slice(MNIST, str(tmp_path_factory.mktemp("data")), 300, 100)
  for path in sorted(glob.glob(os.path.join(data_dir, "*", "*"))):
    s3_server.upload_file(path, BUCKET, f"data/mnist/{os.path.relpath(path, data_dir)}")
  s3_roots = roots.Roots(pipeline_root=f"s3://{BUCKET}/pipeline_root",
                         data_root=f"s3://{BUCKET}/data", serving_root=f"s3://{BUCKET}/serving",
                         tflite_root=f"s3://{BUCKET}/tflite")
  spec = kubeflow_spec.compile_spec(configs.CNN, s3_roots, kubeflow_spec.KFP, "unused-image",
                                    list(beam_presets.DIRECT_ARGS), train_steps=20,
                                    gate_min_value=0.0)
  executor = spec_executor.SpecExecutor(spec, state_dir=str(tmp_path_factory.mktemp("state")))
  runs = executor.run()
  failed = [run for run in runs.values() if run.state != "executed"]
  assert not failed, [(run.name, run.state, spec_executor.failure_log_tail(run))
                      for run in failed]
  return data_dir, runs


def test_every_task_runs_on_s3_and_the_model_is_pushed_there(s3_server, s3_run):
  _, runs = s3_run
  pushed = runs["Pusher"].outputs["pushed_model"]["metadata"]
  assert pushed["pushed"] == 1
  assert pushed["pushed_destination"].startswith(f"s3://{BUCKET}/serving/cnn/")
  version = pushed["pushed_version"]
  keys = {o["Key"] for o in s3_server.list_objects_v2(Bucket=BUCKET)["Contents"]}
  assert f"serving/cnn/{version}/saved_model.pb" in keys
  assert f"serving/cnn/{version}/{atomic_pusher.PUSH_RECORD}" in keys
  assert {f"tflite/cnn/{version}/model.tflite", f"tflite/cnn/{version}/metadata.json"} <= keys
  record = json.loads(s3_server.get_object(
      Bucket=BUCKET, Key=f"serving/cnn/{version}/{atomic_pusher.PUSH_RECORD}")["Body"].read())
  assert record["model_uri"].startswith(f"s3://{BUCKET}/pipeline_root/")
  assert runs["KubeflowUiArtifacts"].outputs["metrics"]["metadata"]["blessed"] == 1


_READ_BACK = """
import os, sys
import numpy as np
import tensorflow as tf
import tensorflow_io  # registers s3://
records = [r.numpy() for r in tf.data.TFRecordDataset(sys.argv[2:], "GZIP").take(32)]
outputs = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](
    examples=tf.constant(records))
print(outputs["probabilities"].shape[0], float(np.mean(outputs["probabilities"].numpy().sum(1))))
sys.stdout.flush()
os._exit(0)  # tensorflow-io's S3 client aborts at interpreter exit
"""


def test_pushed_model_is_read_back_through_s3_and_serves(s3_run):
  data_dir, runs = s3_run
  destination = runs["Pusher"].outputs["pushed_model"]["metadata"]["pushed_destination"]
  result = subprocess.run(
      [sys.executable, "-c", _READ_BACK, destination,
       *sorted(glob.glob(os.path.join(data_dir, "eval", "*")))],
      capture_output=True, text=True, timeout=300, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_USE_LEGACY_KERAS="1"))
  assert result.returncode == 0, result.stderr[-3000:]
  count, total_probability = result.stdout.split()
  assert int(count) == 32 and abs(float(total_probability) - 1.0) < 1e-4


def test_beam_s3_operations_share_one_client_per_configuration(s3_server):
  # pylint: disable=import-outside-toplevel
  from apache_beam.io.aws.clients.s3 import boto3_client
  from apache_beam.io.filesystems import FileSystems
  from apache_beam.options.pipeline_options import PipelineOptions
  unshared = boto3_client.boto3
  try:
    assert beam_s3_clients.share_s3_clients()
    options = PipelineOptions([])
    first, second = boto3_client.Client(options), boto3_client.Client(options)
    assert first is not second and first.client is second.client
    other = boto3_client.Client(PipelineOptions(["--s3_region_name=eu-west-1"]))
    assert other.client is not first.client
    FileSystems.set_options(options)  # As a pipeline run does.
    path = f"s3://{BUCKET}/shared-client/written.txt"
    with FileSystems.create(path) as f:
      f.write(b"written through the shared client")
    FileSystems.rename([path], [path + ".renamed"])
    assert not FileSystems.exists(path)
    with FileSystems.open(path + ".renamed") as f:
      assert f.read() == b"written through the shared client"
  finally:
    boto3_client.boto3 = unshared
    FileSystems.set_options(None)
