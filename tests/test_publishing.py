"""TFLite versions published on an object store (TF's ram:// filesystem stands
in for gs:// and s3://): metadata.json, the completion marker, comes last, a
version is never replaced, and a version without its marker does not count."""
import pytest
import tensorflow as tf

from components import publishing
from components.tflite_exporter import layout


def test_tflite_version_on_an_object_store_is_published_with_its_metadata_last(
    tmp_path, monkeypatch):
  vocabulary = tmp_path / "vocab.txt"
  vocabulary.write_text("a\nb\n")
  copied = []
  real_copy = tf.io.gfile.copy
  monkeypatch.setattr(tf.io.gfile, "copy",
                      lambda source, target, overwrite=False: (
                          copied.append(target), real_copy(source, target, overwrite)))
  base = "ram://bucket/tflite/lstm"
  path = layout.write_version(base, "1700000000", b"flatbuffer", {"family": "lstm"},
                              {"vocab.txt": str(vocabulary)})
  assert path == f"{base}/1700000000"
  published = [target.rsplit("/", 1)[1] for target in copied if target.startswith(base)]
  assert published[-1] == layout.METADATA_FILE
  assert sorted(published) == sorted([layout.MODEL_FILE, "vocab.txt", layout.METADATA_FILE])
  assert layout.read_metadata(path) == {"family": "lstm"}
  assert layout.published_versions(base) == [1700000000]
  with pytest.raises(FileExistsError, match="never replaced"):
    layout.write_version(base, "1700000000", b"other", {"family": "lstm"}, {})


def test_a_version_directory_without_its_marker_is_not_published():
  base = "ram://bucket/tflite/cnn"
  tf.io.gfile.makedirs(f"{base}/1700000005")
  with tf.io.gfile.GFile(f"{base}/1700000005/{layout.MODEL_FILE}", "wb") as f:
    f.write(b"half")
  assert publishing.numeric_versions(base) == [1700000005]
  assert layout.published_versions(base) == []
