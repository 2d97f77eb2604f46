"""TF Serving warmup requests, written into every exported model.

TF Serving replays `assets.extra/tf_serving_warmup_requests` when it loads a
version, so the first real request does not pay for graph initialisation. The
same records let the Pusher load and query a staged copy of the model before
making it visible (components/atomic_pusher.py): one set of requests, checked
at push time and replayed at serving time.
"""
import os
from typing import Dict, Iterator, Tuple

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def write_warmup_requests(export_dir: str, requests: Dict[str, Dict[str, np.ndarray]]) -> None:
  """Writes one PredictRequest per {signature_name: {input_name: value}}.

  Pass serialized protos as dtype=object arrays: numpy's fixed-width bytes
  type silently drops trailing NUL bytes, which corrupts serialized Examples.
  """
  path = os.path.join(export_dir, WARMUP_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.TFRecordWriter(path) as writer:
    for signature_name, inputs in requests.items():
      request = predict_pb2.PredictRequest(
          model_spec=model_pb2.ModelSpec(signature_name=signature_name))
      for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
      writer.write(prediction_log_pb2.PredictionLog(
          predict_log=prediction_log_pb2.PredictLog(request=request)).SerializeToString())


def read_warmup_requests(model_dir: str) -> Iterator[Tuple[str, Dict[str, tf.Tensor]]]:
  """Yields (signature_name, inputs) for each warmup request of a model."""
  path = os.path.join(model_dir, WARMUP_FILE)
  for record in tf.data.TFRecordDataset([path]):
    request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
    yield request.model_spec.signature_name, {
        name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}


def replay(model_dir: str) -> int:
  """Loads the SavedModel and runs every warmup request; returns how many ran.

  Raises if the model has no warmup requests, a signature is missing, or an
  output is not finite: a model that fails here must not be served.
  """
  loaded = tf.saved_model.load(model_dir)
  count = 0
  for signature_name, inputs in read_warmup_requests(model_dir):
    if signature_name not in loaded.signatures:
      raise ValueError(f"{model_dir}: warmup request for missing signature {signature_name!r}")
    for name, output in loaded.signatures[signature_name](**inputs).items():
      if output.dtype.is_floating and not np.all(np.isfinite(output.numpy())):
        raise ValueError(f"{model_dir}: signature {signature_name!r} output {name!r} "
                         "is not finite on its warmup request")
    count += 1
  if count == 0:
    raise ValueError(f"{model_dir}: no warmup requests in {WARMUP_FILE}")
  return count
