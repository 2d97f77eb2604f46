"""TFLiteExporter executor: gate on the push, convert, check parity, publish.

Only a model the Evaluator blessed and the Pusher pushed is exported, under
the pushed version number. The Trainer's SavedModel is loaded once; the
family adapter makes the model it converts of it (a Keras family rebuilds
its model from code with the SavedModel's weights) and supplies the
dense-input function that is converted.

Parity is measured against the SavedModel as TF Serving runs it, not against
the adapter's own function (which would agree with its conversion even when
the adapter is wrong): raw eval examples go through the SavedModel's
`serving_default` for the reference outputs, and through its
`transform_features` for the TFLite inputs (and labels). The gate runs on
the file as shipped: with its TFLite Model Metadata and associated files
(labels.txt, vocabularies) already embedded (model_metadata.py). The
conversion is exported only if the gate passes (parity.py), and then
atomically (layout.py). A failed gate raises: the run fails loudly, and
nothing appears under the TFLite directory.

metadata.json holds no machine paths: the source SavedModel and the serving
version are named relative to the exported version directory when local,
and as given when they are URIs (gs://, s3://).
"""
import gzip
import json
import os
from typing import Any, Callable, Dict, List, Tuple

from absl import logging
import tensorflow as tf
import tensorflow_transform as tft
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import path_utils

from components import uris
from components.tflite_exporter import conversion, layout, model_metadata, parity
from modules.common import contract

# Input and output keys.
MODEL_KEY = "model"
BLESSING_KEY = "model_blessing"
PUSHED_MODEL_KEY = "pushed_model"
TRANSFORM_GRAPH_KEY = "transform_graph"
EXAMPLES_KEY = "examples"
EXPORT_KEY = "tflite_export"
# Execution properties.
FAMILY_KEY = "family"
ADAPTER_KEY = "adapter"
TFLITE_DIR_KEY = "tflite_dir"
QUANTIZATION_KEY = "quantization"
PARITY_EXAMPLES_KEY = "parity_examples"
REPRESENTATIVE_EXAMPLES_KEY = "representative_examples"
# Custom properties of the TFLiteExport artifact.
EXPORTED = "exported"
DESTINATION = "tflite_destination"
VERSION = "tflite_version"
QUANTIZATION = "quantization"
SIZE_BYTES = "size_bytes"
# The model's size gzip-compressed: what an app download costs, and where a
# pruned model's zeros show (they are stored dense).
GZIP_SIZE_BYTES = "gzip_size_bytes"
PARITY = "parity"
REASON = "reason"


def read_eval_examples(examples: types.Artifact, count: int) -> tf.Tensor:
  """The first `count` serialized raw eval examples (ExampleGen writes GZIP)."""
  split_uri = artifact_utils.get_split_uri([examples], contract.EVAL_SPLIT)
  files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
  if not files:
    raise FileNotFoundError(f"no eval examples under {split_uri}")
  return next(iter(tf.data.TFRecordDataset(files, compression_type="GZIP").batch(count)))


def _not_exportable_reason(blessing: types.Artifact, pushed: types.Artifact) -> str:
  if blessing.get_int_custom_property("blessed") != 1:
    return "model not blessed"
  if pushed.get_int_custom_property("pushed") != 1:
    return "model not pushed"
  return ""


def _as_shipped(model_bytes: bytes) -> bytes:
  return model_bytes


def convert_with_parity(adapter: contract.FamilyAdapter, saved_model: Any, model: Any,
                        serialized: tf.Tensor, mode: str, representative_examples: int,
                        finish: Callable[[bytes], bytes] = _as_shipped
                        ) -> Tuple[bytes, Dict[str, Any]]:
  """Converts the adapter's function; returns the flatbuffer and parity figures.

  `saved_model` is the Trainer's SavedModel as tf.saved_model.load restores
  it, whose signatures are what TF Serving runs; `model` is what the
  adapter's model_for_conversion() made of it (one load serves both).

  The SavedModel's `transform_features` makes the TFLite inputs (and the
  labels the quality metric reads) of the raw `serialized` examples; its
  `serving_default` makes the reference outputs. `finish` turns the
  conversion into the file shipped (embedding its metadata) before the
  parity run, so the gate checks exactly what is published.
  """
  signatures = saved_model.signatures
  eval_batch = {name: value.numpy() for name, value in
                signatures[contract.TRANSFORM_SIGNATURE](examples=serialized).items()}
  request, raw_columns = adapter.parity_request(serialized)
  eval_batch.update(raw_columns)
  inputs = {spec.name: eval_batch[spec.name].astype(spec.dtype.as_numpy_dtype)
            for spec in adapter.inputs}
  representative = {name: value[:representative_examples] for name, value in inputs.items()}
  function = conversion.serving_function(adapter, model)
  model_bytes = finish(conversion.convert(function, mode, representative, adapter.batch_size))
  served = {name: value.numpy() for name, value in
            signatures[contract.SERVING_DEFAULT](**request).items()}
  figures = parity.measure(adapter, mode, eval_batch, served=served,
                           candidate=conversion.run_tflite(model_bytes, inputs))
  return model_bytes, figures


def _read_shipped_files(adapter_name: str, extra_files: Dict[str, str]) -> Dict[str, bytes]:
  """{file name: content} of the adapter's extra files, read before any
  conversion so a missing one fails the run with nothing written."""
  contents = {}
  for name, source in sorted(extra_files.items()):
    if not tf.io.gfile.exists(source):
      raise FileNotFoundError(f"TFLite adapter {adapter_name} ships {name} from {source}, "
                              "which does not exist")
    with tf.io.gfile.GFile(source, "rb") as f:
      contents[name] = f.read()
  return contents


def portable_location(location: str, version_dir: str) -> str:
  """`location` as metadata.json records it: a URI as given, a local path
  relative to the exported version directory (no machine paths)."""
  if uris.is_uri(location) or uris.is_uri(version_dir):
    return location
  return os.path.relpath(location, version_dir)


def _tensor_entries(described: List[Dict[str, Any]],
                    adapter: contract.FamilyAdapter) -> List[Dict[str, Any]]:
  """describe()'s name, shape and dtype of each tensor with its meaning."""
  return [{**entry, **model_metadata.describe_tensor(adapter.tensor_meanings[entry["name"]])}
          for entry in described]


class Executor(base_executor.BaseExecutor):
  """Exports the pushed model to TFLite when it passes the parity gate."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    self._log_startup(input_dict, output_dict, exec_properties)
    export = artifact_utils.get_single_instance(output_dict[EXPORT_KEY])
    blessing = artifact_utils.get_single_instance(input_dict[BLESSING_KEY])
    pushed = artifact_utils.get_single_instance(input_dict[PUSHED_MODEL_KEY])
    reason = _not_exportable_reason(blessing, pushed)
    if reason:
      logging.info("TFLite export skipped: %s", reason)
      export.set_int_custom_property(EXPORTED, 0)
      export.set_string_custom_property(REASON, reason)
      return

    family = exec_properties[FAMILY_KEY]
    adapter = contract.load_adapter(exec_properties[ADAPTER_KEY])
    mode = contract.check_quantization(exec_properties[QUANTIZATION_KEY], adapter)
    tflite_dir = exec_properties[TFLITE_DIR_KEY]
    version = pushed.get_string_custom_property("pushed_version")
    if not version.isdigit():
      raise ValueError(f"pushed model {pushed.uri} has no numeric pushed_version "
                       f"({version!r}); the TFLite version must equal the serving one")
    target = uris.join(tflite_dir, version)
    if tf.io.gfile.exists(target):  # Fail before converting.
      raise FileExistsError(f"TFLite version {target} already exists; "
                            "versions are never replaced")
    model_path = path_utils.serving_model_path(
        artifact_utils.get_single_uri(input_dict[MODEL_KEY]))
    saved_model = tf.saved_model.load(model_path)
    tft_output = tft.TFTransformOutput(
        artifact_utils.get_single_uri(input_dict[TRANSFORM_GRAPH_KEY]))
    extra_files = adapter.extra_files(tft_output)
    shipped = {**_read_shipped_files(exec_properties[ADAPTER_KEY], extra_files),
               **model_metadata.label_files(adapter.tensor_meanings)}
    serialized = read_eval_examples(artifact_utils.get_single_instance(input_dict[EXAMPLES_KEY]),
                                    exec_properties[PARITY_EXAMPLES_KEY])
    model_bytes, figures = convert_with_parity(
        adapter, saved_model, adapter.model_for_conversion(saved_model, model_path, tft_output),
        serialized, mode, exec_properties[REPRESENTATIVE_EXAMPLES_KEY],
        finish=lambda converted: model_metadata.populate(converted, adapter, version, shipped))
    parity.check(family, mode, figures)
    embedded = model_metadata.read(model_bytes)
    described = conversion.describe(model_bytes)
    metadata = {
        "family": family,
        "version": version,
        "title": adapter.title,
        "description": adapter.description,
        "license": adapter.license,
        "model_file": layout.MODEL_FILE,
        "size_bytes": len(model_bytes),
        GZIP_SIZE_BYTES: len(gzip.compress(model_bytes, compresslevel=9)),
        "quantization": mode,
        "inputs": _tensor_entries(described["inputs"], adapter),
        "outputs": _tensor_entries(described["outputs"], adapter),
        "embedded_metadata": {
            "name": model_metadata.METADATA_NAME,
            "min_parser_version": embedded["min_parser_version"],
            "associated_files": sorted(model_metadata.associated_files(model_bytes)),
        },
        "preprocessing": adapter.preprocessing,
        "extra_files": sorted(shipped),
        "adapter": exec_properties[ADAPTER_KEY],
        layout.APP_INPUT_KEY: adapter.app_input,
        "parity": figures,
        "source_model_uri": portable_location(model_path, target),
        "serving_model": portable_location(
            pushed.get_string_custom_property("pushed_destination"), target),
    }
    # The bytes embedded are the bytes shipped beside the model.
    destination = layout.write_version(tflite_dir, version, model_bytes, metadata, {},
                                       contents=shipped)
    logging.info("TFLite model exported to %s (%s, %d bytes, parity %s)",
                 destination, mode, len(model_bytes), figures)

    with tf.io.gfile.GFile(os.path.join(export.uri, layout.METADATA_FILE), "w") as f:
      f.write(json.dumps(metadata, indent=2, sort_keys=True))
    export.set_int_custom_property(EXPORTED, 1)
    export.set_string_custom_property(DESTINATION, destination)
    export.set_string_custom_property(VERSION, version)
    export.set_string_custom_property(QUANTIZATION, mode)
    export.set_int_custom_property(SIZE_BYTES, len(model_bytes))
    export.set_int_custom_property(GZIP_SIZE_BYTES, metadata[GZIP_SIZE_BYTES])
    export.set_string_custom_property(PARITY, json.dumps(figures, sort_keys=True))
