"""One boto3 client per S3 configuration for Beam's S3 filesystem.

Beam's S3 filesystem (`apache_beam.io.aws`) builds a new boto3 session and
client for every file operation it performs: each match, open, exists, size,
copy, rename and delete. Building a client loads botocore's service model and
endpoint rules from their JSON files, 50-150 ms on a two-core machine, and a
Beam stage on S3 makes hundreds of such operations. On the S3 end-to-end
test's spec (a 20-step CNN on MinIO's API, tests/test_kubeflow_s3_e2e.py)
that was 37 s of its tasks' 120 s; Transform alone spent 12 s of its 32 s
building clients.

boto3 clients are thread-safe and keep no state between requests, so one
client per configuration (endpoint, region, credentials, TLS settings) can
serve every operation of a process. `share_s3_clients` makes Beam's S3
wrapper take its client from such a cache; the wrapper object, which holds
the state of one download, is still built per operation.
"""
import functools
import types
from typing import Any, Tuple


@functools.lru_cache(maxsize=None)
def _client(configuration: Tuple[Tuple[str, Any], ...]):
  # pylint: disable=import-outside-toplevel  (boto3 only where Beam has it)
  import boto3
  return boto3.session.Session().client(**dict(configuration))


class _SharedClientSession:
  """What Beam's S3 wrapper gets for `boto3.session.Session()`: its `client`
  returns the one client built for those arguments."""

  def client(self, **arguments):
    return _client(tuple(sorted(arguments.items())))


def share_s3_clients() -> bool:
  """Makes Beam's S3 filesystem in this process share one boto3 client per
  configuration; False (and nothing changed) where Beam has no boto3.
  Idempotent."""
  # pylint: disable=import-outside-toplevel  (Beam only when a task runs)
  from apache_beam.io.aws.clients.s3 import boto3_client
  if boto3_client.boto3 is None:
    return False
  boto3_client.boto3 = types.SimpleNamespace(
      session=types.SimpleNamespace(Session=_SharedClientSession))
  return True
