"""Bad input: each case gives a clear error naming the file, split or feature,
a non-zero exit, and nothing trained or pushed.

Runner-level checks (missing split, empty or non-GZIP files) run before TFX
starts; anomalies in the examples themselves are found by ExampleValidator
against the curated schema and stop the run at AnomaliesGate (one full run of
that path is in test_cnn_e2e.py). Each anomaly kind is checked here through
the same TFDV validation the pipeline runs.
"""
import os
import shutil
import stat
import subprocess

from apache_beam.options.pipeline_options import PipelineOptions
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv

from pipeline import configs
from runners import beam_presets, preflight
from tests import e2e_helpers, local_runs

MNIST = os.path.join(configs.DEFAULT_DATA_ROOT, "mnist")


def _run(data_dir, tmp_path):
  output_dir = tmp_path / "out"
  result = e2e_helpers.run_refused_pipeline(["--model", "cnn", "--data-dir", str(data_dir),
                                             "--output-dir", str(output_dir)])
  assert result.returncode == 3, result.stdout + result.stderr
  assert not output_dir.exists(), "nothing may be written for bad input"
  return result.stderr


def test_empty_input_directory_names_the_missing_split(tmp_path):
  (tmp_path / "data" / "train").mkdir(parents=True)
  (tmp_path / "data" / "eval").mkdir()
  stderr = _run(tmp_path / "data", tmp_path)
  assert f"{tmp_path / 'data' / 'train'}: no input files for split 'train'" in stderr


def test_empty_file_is_named(tmp_path):
  data = e2e_helpers.write_small_slice(MNIST, str(tmp_path / "data"), 20, 20)
  empty = os.path.join(data, "eval", "empty.tfrecord.gz")
  open(empty, "wb").close()
  assert f"{empty}: empty file" in _run(data, tmp_path)


def test_file_that_is_not_gzip_tfrecord_is_named(tmp_path):
  data = e2e_helpers.write_small_slice(MNIST, str(tmp_path / "data"), 20, 20)
  csv_file = os.path.join(data, "train", "digits.csv")
  with open(csv_file, "w") as stream:
    stream.write("pixel0,pixel1,label\n0,0,3\n")
  assert f"{csv_file}: not a GZIP TFRecord file" in _run(data, tmp_path)


def _run_on_output_dir(output_dir: str) -> subprocess.CompletedProcess:
  """local_runner.py on the shipped data into `output_dir`, with permission
  checks applied even to root (setpriv drops its override capabilities)."""
  command = local_runs.command_line(local_runs.LOCAL_RUNNER,
                                    ["--model", "cnn", "--output-dir", output_dir])
  if os.geteuid() == 0:
    if not shutil.which("setpriv"):
      pytest.skip("root without setpriv: permission bits cannot be made to apply")
    command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
  return subprocess.run(command, cwd=e2e_helpers.REPO_ROOT, capture_output=True, text=True,
                        timeout=120, check=False)


@pytest.mark.parametrize("case", ["read-only directory", "inside a read-only directory",
                                  "inside a directory it cannot enter", "a file in the way",
                                  "under /proc", "under /sys"])
def test_unusable_output_dir_is_named_with_exit_2(case, tmp_path):
  locked = tmp_path / "locked"
  locked.mkdir()
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  output_dir = {"read-only directory": locked, "inside a read-only directory": locked / "out",
                "inside a directory it cannot enter": locked / "sealed" / "out",
                "a file in the way": a_file / "out", "under /proc": "/proc/tfx-out",
                "under /sys": "/sys/tfx-out"}[case]
  (locked / "sealed").mkdir()
  (locked / "sealed").chmod(0)
  locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
  try:
    result = _run_on_output_dir(str(output_dir))
  finally:
    locked.chmod(stat.S_IRWXU)
    (locked / "sealed").chmod(stat.S_IRWXU)
  assert result.returncode == 2, result.stdout + result.stderr
  assert result.stderr.splitlines()[-1] == (
      f"local_runner.py: error: --output-dir {output_dir} cannot be created or written "
      "(a file is in the way, or no write permission)")
  assert "Traceback" not in result.stderr
  assert sorted(os.listdir(locked)) == ["sealed"], "nothing may be written"


def test_preflight_accepts_the_shipped_data():
  files = preflight.check_input(configs.CNN, MNIST)
  assert [os.path.basename(os.path.dirname(f)) for f in files] == ["train", "eval"]


def _example(image, label, **extra):
  feature = {}
  if image is not None:
    feature["image"] = image
  if label is not None:
    feature["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))
  feature.update(extra)
  return tf.train.Example(features=tf.train.Features(feature=feature))


def _pixels(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


GOOD_IMAGE = _pixels([0] * 784)
BAD_CASES = {
    "label out of range": (_example(GOOD_IMAGE, 11), "label"),
    "pixel out of range": (_example(_pixels([300] + [0] * 783), 1), "image"),
    "missing column": (_example(GOOD_IMAGE, None), "label"),
    "extra unknown column": (_example(GOOD_IMAGE, 1, source=_pixels([1])), "source"),
    "wrong image size": (_example(_pixels([0] * 100), 1), "image"),
    "single huge row": (_example(_pixels([0] * 784 * 1000), 1), "image"),
}


# StatisticsGen's Beam runner (the direct preset).
IN_PROCESS = PipelineOptions(beam_presets.DIRECT_ARGS)


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_each_anomaly_kind_is_caught_and_names_the_feature(case, tmp_path):
  bad_example, feature = BAD_CASES[case]
  path = str(tmp_path / "examples.tfrecord")
  good = _example(GOOD_IMAGE, 3)
  with tf.io.TFRecordWriter(path) as writer:
    for example in [good] * 20 + [bad_example]:
      writer.write(example.SerializeToString())
  stats = tfdv.generate_statistics_from_tfrecord(path, pipeline_options=IN_PROCESS)
  anomalies = tfdv.validate_statistics(stats, tfdv.load_schema_text(configs.CNN.schema_path()))
  assert feature in anomalies.anomaly_info, (case, anomalies)


def test_string_in_a_numeric_field_fails_decoding_naming_the_feature(tmp_path):
  path = str(tmp_path / "examples.tfrecord")
  text_pixels = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x"] * 784))
  with tf.io.TFRecordWriter(path) as writer:
    for example in [_example(GOOD_IMAGE, 3)] * 20 + [_example(text_pixels, 1)]:
      writer.write(example.SerializeToString())
  # StatisticsGen decodes with the same coder: the run stops there, naming it.
  # One batch for all 21 records: TFDV's default batches adapt to elapsed time,
  # and a batch holding only the bad record decodes, leaving a type-merge
  # error later that names no feature (seen once on a slow run).
  with pytest.raises(Exception, match='wrong type.*feature "image"'):
    tfdv.generate_statistics_from_tfrecord(
        path, stats_options=tfdv.StatsOptions(desired_batch_size=64),
        pipeline_options=IN_PROCESS)
