"""Kubernetes resource quantities, as a Kubeflow user writes them on the
runner's resource flags, turned into what a PipelineSpec holds.

KFP's PipelineSpec (kfp-pipeline-spec 0.2) keeps a task's CPU as cores and
its memory as GB (10^9 bytes), both doubles, and KFP renders them back as
quantities on the pod; KFP's own SDK converts the same way
(`PipelineTask.set_memory_limit("16Gi")` stores 17.179869184).

- CPU: `2`, `0.5` or `500m` (millicores).
- Memory: a number with a decimal (`k`/`K`, `M`, `G`, `T`, `P`, `E`) or
  binary (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`) suffix, e.g. `8G`, `16Gi`,
  `512Mi`. A plain number is GB, as these flags always took it (Kubernetes
  itself reads a bare number as bytes, which no training task means).
"""
import argparse
import re

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_CPU = re.compile(rf"^{_NUMBER}(m?)$")
_MEMORY = re.compile(rf"^{_NUMBER}(Ei|Pi|Ti|Gi|Mi|Ki|E|P|T|G|M|k|K)?$")
BYTES_PER_GB = 10**9
_MEMORY_UNIT_BYTES = {
    "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
CPU_EXAMPLES = "2, 0.5 or 500m"
MEMORY_EXAMPLES = "16Gi, 8G or 512Mi; a plain number is GB"


def _positive(value: float, text: str, examples: str) -> float:
  if not value > 0:
    raise argparse.ArgumentTypeError(f"must be positive, got {text!r} (e.g. {examples})")
  return value


def cpu_cores(text: str) -> float:
  """Cores of a CPU quantity; raises argparse.ArgumentTypeError (argparse
  then exits 2 naming the flag) on anything else."""
  match = _CPU.match(text.strip())
  if match is None:
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a Kubernetes CPU quantity (e.g. {CPU_EXAMPLES})")
  number, millicores = match.groups()
  return _positive(float(number) / (1000 if millicores else 1), text, CPU_EXAMPLES)


def memory_gb(text: str) -> float:
  """GB (10^9 bytes) of a memory quantity, a plain number taken as GB;
  raises argparse.ArgumentTypeError on anything else."""
  match = _MEMORY.match(text.strip())
  if match is None:
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a Kubernetes memory quantity (e.g. {MEMORY_EXAMPLES})")
  number, unit = match.groups()
  value = float(number) if unit is None else float(number) * _MEMORY_UNIT_BYTES[unit] / BYTES_PER_GB
  return _positive(value, text, MEMORY_EXAMPLES)
