"""TFLite Model Metadata: what a model.tflite says about itself to app tooling.

Android Studio's ML Model Binding, the TFLite Task Library and the TFLite
metadata extractor read a model's name, description, licence, the meaning,
normalisation and value range of each input and output, and its label files
from a `ModelMetadata` flatbuffer (file identifier M001) that the model holds
in its `metadata` vector under the name TFLITE_METADATA; the files it names
are appended to the model as an uncompressed zip archive, so the .tflite is
also a zip that readers open in place. The schema is tflite-support's
`tensorflow_lite_support/metadata/metadata_schema.fbs` (version 1.5.0).

tflite-support's own writers cannot be used: its last release (0.4.4)
installs under the pinned stack but `import tflite_support` fails (a pybind11
type registered twice). So the few tables needed are written here with the
flatbuffers package, slots numbered in the schema's field order (a union
takes two: its type, then its value), and `read` parses them back for tests
and tools. Only schema 1.0.0 features are used, plus the VOCABULARY file type
(1.0.1), so `min_parser_version` is the lowest the content allows.
"""
import io
import zipfile
from typing import Any, Dict, List, Optional, Tuple

import flatbuffers
from flatbuffers import number_types
import numpy as np
from tensorflow.lite.python import schema_py_generated as tflite_schema

from modules.common.contract import LABELS_FILE, FamilyAdapter, TensorMeaning

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
TFLITE_IDENTIFIER = b"TFL3"
AUTHOR = "tfx-model-factory"

# AssociatedFileType values, and the parser version each needs above 1.0.0.
ASSOCIATED_FILE_TYPES = {"UNKNOWN": 0, "DESCRIPTIONS": 1, "TENSOR_AXIS_LABELS": 2,
                         "TENSOR_VALUE_LABELS": 3, "TENSOR_AXIS_SCORE_CALIBRATION": 4,
                         "VOCABULARY": 5}
_FILE_TYPE_NAMES = {value: name for name, value in ASSOCIATED_FILE_TYPES.items()}
BASE_PARSER_VERSION = "1.0.0"
_FILE_TYPE_PARSER_VERSIONS = {"VOCABULARY": "1.0.1"}
# Union members (ContentProperties, ProcessUnitOptions) and enums used.
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2
_NORMALIZATION_OPTIONS = 1
_GRAYSCALE = 2
_COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}
_BYTE, _UINT = number_types.Uint8Flags, number_types.Uint32Flags
# A fixed zip timestamp: the same model converts to the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def label_files(meanings: Dict[str, TensorMeaning]) -> Dict[str, bytes]:
  """{LABELS_FILE: one label per line} when a tensor has axis labels."""
  labelled = [name for name, meaning in meanings.items() if meaning.axis_labels]
  if len(labelled) > 1:
    raise ValueError(f"tensors {sorted(labelled)} all have axis labels; "
                     f"one {LABELS_FILE} can describe only one")
  if not labelled:
    return {}
  return {LABELS_FILE: "".join(f"{label}\n" for label in meanings[labelled[0]].axis_labels)
          .encode("utf-8")}


def describe_tensor(meaning: TensorMeaning) -> Dict[str, Any]:
  """A tensor's meaning as metadata.json records it beside name, shape, dtype."""
  described: Dict[str, Any] = {"description": meaning.description}
  if meaning.value_range:
    described["value_range"] = list(meaning.value_range)
  if meaning.normalization:
    mean, std = meaning.normalization
    described["normalization"] = {"mean": mean, "std": std, "rule": "(raw - mean) / std"}
  if meaning.grayscale_image_size:
    height, width = meaning.grayscale_image_size
    described["image"] = {"color_space": "GRAYSCALE", "height": height, "width": width}
  if meaning.axis_labels:
    described["labels_file"] = LABELS_FILE
  if meaning.associated_files:
    described["associated_files"] = [name for name, _, _ in meaning.associated_files]
  return described


def _associated_files(meaning: TensorMeaning, tensor: str) -> List[Tuple[str, str, str]]:
  """(name, type, description) of every file associated with one tensor."""
  files = list(meaning.associated_files)
  if meaning.axis_labels:
    files.insert(0, (LABELS_FILE, "TENSOR_AXIS_LABELS",
                     f"Line i (0-based) names index i of the last axis of {tensor}."))
  for name, kind, _ in files:
    if kind not in ASSOCIATED_FILE_TYPES:
      raise ValueError(f"file {name!r} of tensor {tensor!r} has unknown TFLite "
                       f"AssociatedFileType {kind!r}; choose one of "
                       f"{', '.join(ASSOCIATED_FILE_TYPES)}")
  return files


def min_parser_version(meanings: Dict[str, TensorMeaning]) -> str:
  """The lowest metadata parser version that understands every field written."""
  versions = [BASE_PARSER_VERSION] + [
      _FILE_TYPE_PARSER_VERSIONS.get(kind, BASE_PARSER_VERSION)
      for name, meaning in meanings.items()
      for _, kind, _ in _associated_files(meaning, name)]
  return max(versions, key=lambda v: tuple(int(part) for part in v.split(".")))


class _Writer:
  """Builds ModelMetadata tables bottom-up (a flatbuffer's children first)."""

  def __init__(self):
    self.builder = flatbuffers.Builder(1024)

  def string(self, value: Optional[str]) -> Optional[int]:
    return None if value is None else self.builder.CreateString(value)

  def offsets(self, offsets: List[int]) -> int:
    self.builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
      self.builder.PrependUOffsetTRelative(offset)
    return self.builder.EndVector()

  def floats(self, values) -> int:
    return self.builder.CreateNumpyVector(np.asarray(values, np.float32))

  def table(self, fields: List[Tuple[int, str, Any]]) -> int:
    """A table from (slot, kind, value): kind "offset", "byte" or "uint"; None
    values are left out (readers get the schema default)."""
    self.builder.StartObject(max((slot + 1 for slot, _, _ in fields), default=0))
    for slot, kind, value in fields:
      if value is None:
        continue
      if kind == "offset":
        self.builder.PrependUOffsetTRelativeSlot(slot, value, 0)
      elif kind == "byte":
        self.builder.PrependUint8Slot(slot, value, 0)
      else:
        self.builder.PrependUint32Slot(slot, value, 0)
    return self.builder.EndObject()

  def associated_file(self, name: str, kind: str, description: str) -> int:
    return self.table([(0, "offset", self.string(name)),
                       (1, "offset", self.string(description)),
                       (2, "byte", ASSOCIATED_FILE_TYPES[kind])])

  def tensor(self, name: str, meaning: TensorMeaning) -> int:
    if meaning.grayscale_image_size:
      height, width = meaning.grayscale_image_size
      size = self.table([(0, "uint", width), (1, "uint", height)])
      properties = self.table([(0, "byte", _GRAYSCALE), (1, "offset", size)])
      content = self.table([(0, "byte", _IMAGE_PROPERTIES), (1, "offset", properties)])
    else:
      content = self.table([(0, "byte", _FEATURE_PROPERTIES), (1, "offset", self.table([]))])
    process_units = None
    if meaning.normalization:
      mean, std = meaning.normalization
      options = self.table([(0, "offset", self.floats([mean])),
                            (1, "offset", self.floats([std]))])
      process_units = self.offsets([self.table([(0, "byte", _NORMALIZATION_OPTIONS),
                                                (1, "offset", options)])])
    stats = None
    if meaning.value_range:
      low, high = meaning.value_range
      stats = self.table([(0, "offset", self.floats([high])), (1, "offset", self.floats([low]))])
    files = [self.associated_file(*file) for file in _associated_files(meaning, name)]
    return self.table([(0, "offset", self.string(name)),
                       (1, "offset", self.string(meaning.description)),
                       (3, "offset", content),
                       (4, "offset", process_units),
                       (5, "offset", stats),
                       (6, "offset", self.offsets(files) if files else None)])

  def model(self, adapter: FamilyAdapter, version: str, inputs: List[str],
            outputs: List[str]) -> bytes:
    meanings = adapter.tensor_meanings
    input_tables = [self.tensor(name, meanings[name]) for name in inputs]
    output_tables = [self.tensor(name, meanings[name]) for name in outputs]
    subgraph = self.table([(0, "offset", self.string(adapter.title)),
                           (1, "offset", self.string(adapter.description)),
                           (2, "offset", self.offsets(input_tables)),
                           (3, "offset", self.offsets(output_tables))])
    root = self.table([
        (0, "offset", self.string(adapter.title)),
        (1, "offset", self.string(adapter.description)),
        (2, "offset", self.string(version)),
        (3, "offset", self.offsets([subgraph])),
        (4, "offset", self.string(AUTHOR)),
        (5, "offset", self.string(adapter.license)),
        (7, "offset", self.string(min_parser_version(
            {name: meanings[name] for name in inputs + outputs}))),
    ])
    self.builder.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(self.builder.Output())


def _tensor_names(model: Any) -> Tuple[List[str], List[str]]:
  """Signature names of the subgraph's inputs and outputs, in subgraph order
  (the order TensorMetadata must follow)."""
  if not model.signatureDefs:
    raise ValueError("the TFLite model has no signature to name its tensors by")
  signature = model.signatureDefs[0]
  by_index = {entry.tensorIndex: entry.name.decode("utf-8")
              for entry in list(signature.inputs) + list(signature.outputs)}
  subgraph = model.subgraphs[signature.subgraphIndex]
  return ([by_index[int(i)] for i in subgraph.inputs],
          [by_index[int(i)] for i in subgraph.outputs])


def populate(model_bytes: bytes, adapter: FamilyAdapter, version: str,
             files: Dict[str, bytes]) -> bytes:
  """`model_bytes` with the adapter's metadata embedded and the files it
  associates (contents in `files`: shipped files by name) zipped on.

  Raises ValueError when a tensor has no TensorMeaning, a meaning names a
  file that is not shipped, or the model already holds metadata.
  """
  model = tflite_schema.ModelT.InitFromObj(tflite_schema.Model.GetRootAsModel(model_bytes, 0))
  inputs, outputs = _tensor_names(model)
  missing = [name for name in inputs + outputs if name not in adapter.tensor_meanings]
  if missing:
    raise ValueError(f"{type(adapter).__name__} gives no TensorMeaning for TFLite tensors "
                     f"{missing}; add them to its tensor_meanings")
  associated = [name for tensor in inputs + outputs
                for name, _, _ in _associated_files(adapter.tensor_meanings[tensor], tensor)]
  unshipped = sorted(set(associated) - set(files))
  if unshipped:
    raise ValueError(f"{type(adapter).__name__} associates files {unshipped} with its "
                     f"tensors but ships no such files (shipped: {sorted(files)})")
  if any(entry.name.decode("utf-8") == METADATA_NAME for entry in model.metadata or []):
    raise ValueError(f"the TFLite model already holds {METADATA_NAME}")

  buffer = tflite_schema.BufferT()
  buffer.data = np.frombuffer(_Writer().model(adapter, version, inputs, outputs), np.uint8)
  model.buffers.append(buffer)
  entry = tflite_schema.MetadataT()
  entry.name = METADATA_NAME
  entry.buffer = len(model.buffers) - 1
  model.metadata = list(model.metadata or []) + [entry]
  builder = flatbuffers.Builder(1024)
  builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)

  packed = io.BytesIO(bytes(builder.Output()))
  with zipfile.ZipFile(packed, "a") as archive:  # Appended after the flatbuffer.
    for name in sorted(set(associated)):
      info = zipfile.ZipInfo(name, _ZIP_DATE)
      info.external_attr = 0o644 << 16  # rw-r--r-- when unzipped.
      archive.writestr(info, files[name], zipfile.ZIP_STORED)
  populated = packed.getvalue()
  if sorted(associated_files(populated)) != sorted(set(associated)):
    raise ValueError("the associated files did not read back from the populated model")
  return populated


class _Table:
  """Read access to one flatbuffer table by slot number."""

  def __init__(self, buffer: bytes, position: int):
    self._table = flatbuffers.table.Table(buffer, position)

  def _position(self, slot: int) -> int:
    """Where the field of `slot` lies in the buffer; 0 when it is absent."""
    offset = self._table.Offset(4 + 2 * slot)
    return offset + self._table.Pos if offset else 0

  def string(self, slot: int) -> Optional[str]:
    position = self._position(slot)
    return self._table.String(position).decode("utf-8") if position else None

  def scalar(self, slot: int, flags) -> int:
    position = self._position(slot)
    return self._table.Get(flags, position) if position else 0

  def table(self, slot: int) -> Optional["_Table"]:
    position = self._position(slot)
    return _Table(self._table.Bytes, self._table.Indirect(position)) if position else None

  def _vector(self, slot: int) -> Tuple[int, int]:
    """(first element's position, length) of a vector field; (0, 0) when absent."""
    offset = self._table.Offset(4 + 2 * slot)
    return (self._table.Vector(offset), self._table.VectorLen(offset)) if offset else (0, 0)

  def tables(self, slot: int) -> List["_Table"]:
    start, length = self._vector(slot)
    return [_Table(self._table.Bytes, self._table.Indirect(start + 4 * i))
            for i in range(length)]

  def floats(self, slot: int) -> List[float]:
    start, length = self._vector(slot)
    return [float(self._table.Get(number_types.Float32Flags, start + 4 * i))
            for i in range(length)]


def _read_file(table: _Table) -> Dict[str, Any]:
  return {"name": table.string(0), "description": table.string(1),
          "type": _FILE_TYPE_NAMES.get(table.scalar(2, _BYTE), str(table.scalar(2, _BYTE)))}


def _read_tensor(table: _Table) -> Dict[str, Any]:
  tensor: Dict[str, Any] = {"name": table.string(0), "description": table.string(1)}
  content = table.table(3)
  if content is not None:
    kind = content.scalar(0, _BYTE)
    tensor["content"] = {_FEATURE_PROPERTIES: "feature",
                         _IMAGE_PROPERTIES: "image"}.get(kind, str(kind))
    if kind == _IMAGE_PROPERTIES:
      image = content.table(1)
      size = image.table(1)
      tensor["color_space"] = _COLOR_SPACES.get(image.scalar(0, _BYTE), str(image.scalar(0, _BYTE)))
      tensor["image_size"] = {"width": size.scalar(0, _UINT), "height": size.scalar(1, _UINT)} if size else None
  for unit in table.tables(4):
    if unit.scalar(0, _BYTE) == _NORMALIZATION_OPTIONS:
      options = unit.table(1)
      tensor["normalization"] = {"mean": options.floats(0), "std": options.floats(1)}
  stats = table.table(5)
  if stats is not None:
    tensor["stats"] = {"max": stats.floats(0), "min": stats.floats(1)}
  tensor["associated_files"] = [_read_file(f) for f in table.tables(6)]
  return tensor


def metadata_buffer(model_bytes: bytes) -> Optional[bytes]:
  """The TFLITE_METADATA buffer of a model, or None when it has none."""
  model = tflite_schema.Model.GetRootAsModel(model_bytes, 0)
  for i in range(model.MetadataLength()):
    if model.Metadata(i).Name().decode("utf-8") == METADATA_NAME:
      return model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
  return None


def read(model_bytes: bytes) -> Dict[str, Any]:
  """The embedded ModelMetadata as a dict (ValueError when there is none)."""
  buffer = metadata_buffer(model_bytes)
  if buffer is None:
    raise ValueError(f"the TFLite model holds no {METADATA_NAME}")
  if not flatbuffers.util.BufferHasIdentifier(buffer, 0, METADATA_IDENTIFIER):
    raise ValueError(f"{METADATA_NAME} lacks the file identifier {METADATA_IDENTIFIER!r}")
  root = _Table(buffer, flatbuffers.encode.Get(flatbuffers.packer.uoffset, buffer, 0))
  subgraphs = root.tables(3)
  return {
      "name": root.string(0), "description": root.string(1), "version": root.string(2),
      "author": root.string(4), "license": root.string(5),
      "min_parser_version": root.string(7),
      "subgraphs": [{"name": subgraph.string(0), "description": subgraph.string(1),
                     "inputs": [_read_tensor(t) for t in subgraph.tables(2)],
                     "outputs": [_read_tensor(t) for t in subgraph.tables(3)]}
                    for subgraph in subgraphs],
  }


def associated_files(model_bytes: bytes) -> Dict[str, bytes]:
  """{name: content} of the files zipped onto a model ({} when none)."""
  try:
    with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
      return {name: archive.read(name) for name in archive.namelist()}
  except zipfile.BadZipFile:
    return {}
