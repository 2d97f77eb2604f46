"""Beam job servers (runners/job_servers.py): pinned jars fetched and checked
once, a run that needs one refused with the make target when it is not
fetched, and the local Flink preset's job server chosen from the flags."""
import argparse
import hashlib
import os
import shutil

import pytest

import local_runner
from runners import beam_presets, job_servers

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


def test_the_pinned_flink_job_server_is_beams_runner_with_flink():
  pinned = job_servers.FLINK.pinned()
  assert "org.apache.beam:beam-runners-flink-1.19:2.62.0" in pinned
  assert any(coordinate.startswith("org.apache.flink:flink-runtime:") for coordinate in pinned)
  assert all(len(sha256) == 64 for sha256 in pinned.values())


def _flink_args(*flags: str) -> argparse.Namespace:
  parser = argparse.ArgumentParser()
  beam_presets.add_arguments(parser)
  return parser.parse_args(["--beam-preset", "flink", *flags])


@pytest.mark.parametrize("flags, master", [
    ((), "[local]"),
    (("--flink-master", "jobmanager:8081"), "jobmanager:8081"),
    (("--job-endpoint", "localhost:8099"), None),
])
def test_a_local_flink_run_starts_a_job_server_unless_given_one(flags, master):
  args = _flink_args(*flags)
  assert beam_presets.managed_flink_master(args) == master
  beam_args = beam_presets.beam_pipeline_args(args)
  assert "--runner=PortableRunner" in beam_args and "--environment_type=LOOPBACK" in beam_args
  assert any(a.startswith("--job_endpoint=") for a in beam_args) == (master is None)


def test_a_flink_run_without_the_fetched_job_server_exits_2_naming_the_target(
    tmp_path, monkeypatch, capsys):
  monkeypatch.setenv(job_servers.CACHE_ROOT_ENV, str(tmp_path / "empty-cache"))
  with pytest.raises(SystemExit) as exit_info:
    local_runner.parse_args(["--model", "cnn", "--beam-preset", "flink"])
  assert exit_info.value.code == 2
  assert "run `make job-servers` first" in capsys.readouterr().err


def test_fetch_command_takes_every_engine_by_default_and_refuses_an_unknown_one(capsys):
  assert job_servers.main(["fetch"]) == 0  # `make test` has fetched them
  assert capsys.readouterr().out.startswith("flink job server: ")
  with pytest.raises(SystemExit) as exit_info:
    job_servers.main(["fetch", "samza"])
  assert exit_info.value.code == 2
  assert "no job server for ['samza']" in capsys.readouterr().err
