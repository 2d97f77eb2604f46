"""TFX's LocalDagRunner, run under a pipeline run id the caller chose.

LocalDagRunner names each run by its start time and tells nobody; TFX files
every execution of the run under an MLMD `pipeline_run` context of that name.
Choosing the id up front lets the runner name its log file after it and read
back exactly this run's executions (runners/run_summary.py), whatever other
runs wrote to the same MLMD. Beam stages that run in this process get no
worker package built for them (components/in_process_beam.py).
"""
from tfx.dsl.compiler import constants
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
from tfx.orchestration.portable import runtime_parameter_utils

from components.in_process_beam import skip_worker_package_for_in_process_beam


class RunIdDagRunner(LocalDagRunner):
  """A LocalDagRunner whose pipeline run id is `run_id`."""

  def __init__(self, run_id: str):
    super().__init__()
    self.run_id = run_id
    skip_worker_package_for_in_process_beam()

  def run_with_ir(self, pipeline, run_options=None, **kwargs):
    # LocalDagRunner substitutes its own id only where the parameter is left.
    runtime_parameter_utils.substitute_runtime_parameter(
        pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: self.run_id})
    return super().run_with_ir(pipeline, run_options=run_options, **kwargs)
