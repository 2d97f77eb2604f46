"""Beam job servers (components/job_servers.py): pinned jars fetched and checked
once, a run that needs one refused with the make target when it is not
fetched, and the job server a local Flink or Spark run or a Kubeflow task starts
chosen from the flags."""
import argparse
import hashlib
import os
import shutil

import pytest

import local_runner
from components import job_servers
from runners import beam_presets

JAR = b"PK\x03\x04 not really a jar"


def _server_with_lock(tmp_path, monkeypatch, sha256: str) -> job_servers.JobServer:
  """A job server whose lock pins one jar, served from a folder repository."""
  repository = tmp_path / "repository"
  jar_dir = repository / "org" / "example" / "runner" / "1.0"
  jar_dir.mkdir(parents=True)
  (jar_dir / "runner-1.0.jar").write_bytes(JAR)
  lock_dir = tmp_path / "locks"
  lock_dir.mkdir()
  (lock_dir / "toy.lock").write_text(f"org.example:runner:1.0 {sha256}\n")
  monkeypatch.setattr(job_servers, "LOCK_DIR", str(lock_dir))
  monkeypatch.setenv(job_servers.CACHE_ROOT_ENV, str(tmp_path / "cache"))
  monkeypatch.setenv(job_servers.MAVEN_REPOSITORY_ENV, repository.as_uri())
  return job_servers.JobServer("toy", "org.example.Main", "--master", "[local]")


def test_fetch_checks_every_jar_against_the_lock_and_keeps_it_outside_the_checkout(
    tmp_path, monkeypatch):
  server = _server_with_lock(tmp_path, monkeypatch, hashlib.sha256(JAR).hexdigest())
  with pytest.raises(job_servers.JobServerError, match="make job-servers"):
    server.classpath()
  folder = job_servers.fetch(server)
  assert folder.startswith(str(tmp_path / "cache"))
  assert set(os.listdir(folder)) == {"org.example_runner_1.0.jar", job_servers.VERIFIED_MARKER}
  assert server.classpath() == os.path.join(folder, "*")
  shutil.rmtree(tmp_path / "repository")  # Fetched once: nothing is downloaded again.
  assert job_servers.fetch(server) == folder


def test_a_jar_unlike_its_pinned_checksum_is_refused_and_nothing_is_kept(tmp_path, monkeypatch):
  server = _server_with_lock(tmp_path, monkeypatch, "0" * 64)
  with pytest.raises(job_servers.JobServerError, match="is not the pinned 0000"):
    job_servers.fetch(server)
  assert os.listdir(os.path.dirname(server.cache_dir())) == []  # no jar, no staging folder


@pytest.mark.parametrize("server, runner, engine_artifact", [
    (job_servers.FLINK, "org.apache.beam:beam-runners-flink-1.19:2.62.0",
     "org.apache.flink:flink-runtime:"),
    (job_servers.SPARK, "org.apache.beam:beam-runners-spark-3:2.62.0",
     "org.apache.spark:spark-core_2.12:3.2.2"),
])
def test_each_lock_pins_beams_runner_with_its_engine_and_what_it_was_resolved_from(
    server, runner, engine_artifact):
  pinned = server.pinned()
  assert runner in pinned
  assert any(coordinate.startswith(engine_artifact) for coordinate in pinned)
  # A lock written from other dependencies than the job server's own is stale.
  assert set(server.dependencies) <= set(pinned)
  assert all(len(sha256) == 64 for sha256 in pinned.values())


def preset_args(preset: str, *flags: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  beam_presets.add_arguments(parser)
  return parser.parse_args(["--beam-preset", preset, *flags])


@pytest.mark.parametrize("preset, flags, master", [
    ("flink", (), "[local]"),
    ("flink", ("--flink-master", "jobmanager:8081"), "jobmanager:8081"),
    ("flink", ("--job-endpoint", "localhost:8099"), None),
    ("spark", (), "local[2]"),
    ("spark", ("--spark-master-url", "spark://master:7077"), "spark://master:7077"),
    ("spark", ("--job-endpoint", "localhost:8099"), None),
])
def test_a_local_engine_run_starts_its_job_server_unless_given_one(preset, flags, master):
  args = preset_args(preset, *flags)
  managed = beam_presets.managed_job_server(args)
  assert (managed and managed[1]) == master
  if managed:
    assert managed[0] is beam_presets.JOB_SERVER_PRESETS[preset]
  beam_args = beam_presets.beam_pipeline_args(args)
  assert "--runner=PortableRunner" in beam_args and "--environment_type=LOOPBACK" in beam_args
  # Each stage's SDK harness is kept for the next stage, not started anew.
  assert set(beam_presets.ENVIRONMENT_CACHE_ARGS) <= set(beam_args)
  assert any(a.startswith("--job_endpoint=") for a in beam_args) == (master is None)


@pytest.mark.parametrize("preset, flag", [("flink", "--spark-master-url"),
                                          ("spark", "--flink-master")])
def test_another_engines_master_is_refused(preset, flag):
  with pytest.raises(beam_presets.BeamPresetError, match=f"{flag} only applies to"):
    beam_presets.beam_pipeline_args(preset_args(preset, flag, "host:1"))


@pytest.mark.parametrize("preset", ["flink", "spark"])
def test_a_run_without_the_fetched_job_server_exits_2_naming_the_target(
    preset, tmp_path, monkeypatch, capsys):
  monkeypatch.setenv(job_servers.CACHE_ROOT_ENV, str(tmp_path / "empty-cache"))
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(["--model", "cnn", "--beam-preset", preset])
  assert exit_info.value.code == 2
  assert f"the {preset} job server is not fetched" in capsys.readouterr().err


@pytest.mark.parametrize("beam_args, cluster", [
    (["--runner=FlinkRunner", "--flink_master=jm:8081", "--environment_type=EXTERNAL"],
     ("flink", "jm:8081")),
    (["--runner=SparkRunner", "--spark_master_url=spark://m:7077"], ("spark", "spark://m:7077")),
    (["--runner=PortableRunner", "--job_endpoint=js:8099"], None),
    (["--runner=FlinkRunner", "--flink_master=jm:8081", "--runner=DataflowRunner"], None),
])
def test_a_task_starts_a_job_server_only_for_an_engines_runner_with_its_cluster(
    beam_args, cluster):
  found = job_servers.cluster_of(beam_args)
  assert (found and (found[0].engine, found[1])) == cluster


def test_fetch_command_takes_every_engine_by_default_and_refuses_an_unknown_one(capsys):
  assert job_servers.main(["fetch"]) == 0  # `make test` has fetched them
  assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == [
      "flink job server", "spark job server"]
  with pytest.raises(SystemExit) as exit_info:
    job_servers.main(["fetch", "samza"])
  assert exit_info.value.code == 2
  assert "no job server for ['samza']" in capsys.readouterr().err


def test_kubeflow_local_compiles_the_beam_flags_kubeflow_runner_takes(capsys):
  # pylint: disable=import-outside-toplevel
  from runners import kubeflow_local
  args, _ = kubeflow_local.parse_args(
      ["--model", "cnn", "--beam-preset", "flink", "--flink-master", "localhost:8081"])
  assert args.beam_args == ["--runner=FlinkRunner", "--flink_master=localhost:8081",
                            "--environment_type=EXTERNAL",
                            f"--environment_config={beam_presets.WORKER_POOL_ENDPOINT}",
                            *beam_presets.ENVIRONMENT_CACHE_ARGS]
  with pytest.raises(SystemExit) as exit_info:
    kubeflow_local.parse_args(["--model", "cnn", "--beam-preset", "spark"])
  assert exit_info.value.code == 2
  assert "needs --spark-master-url or --job-endpoint" in capsys.readouterr().err


def test_runs_into_one_output_directory_get_one_job_port_below_the_ephemeral_range():
  port = job_servers.stable_port("/data/runs/outputs")
  assert port == job_servers.stable_port("/data/runs/outputs")
  assert port in job_servers.STABLE_PORTS and port < 32768
  others = {job_servers.stable_port(f"/data/runs/outputs-{i}") for i in range(20)}
  assert len(others) > 15  # spread over the range, not one port for every directory
