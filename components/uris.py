"""Paths that are local directories or object-store URIs (`gs://`, `s3://`).

TF-free, so the runners' argument checks and the spec compiler can use it.
"""
import os


def is_uri(path: str) -> bool:
  """Whether `path` names an object store (`scheme://...`), not a local path."""
  return "://" in path


def join(base: str, *parts: str) -> str:
  """`base`/parts, with "/" on object stores and the OS separator locally."""
  return "/".join([base.rstrip("/"), *parts]) if is_uri(base) else os.path.join(base, *parts)
