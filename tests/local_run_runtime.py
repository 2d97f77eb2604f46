"""What local runs import before and while their components run (a
LocalDagRunner run, and the compilation of a spec the local spec executor
runs): imported once by the tests' fork server (tests/local_runs.py), so
that the runs forked from it start with it in place."""
# pylint: disable=unused-import
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# After the Keras switch above.
import apache_beam.runners.portability.fn_api_runner  # noqa: E402,F401
import tensorflow_data_validation  # noqa: E402,F401
import tensorflow_model_analysis  # noqa: E402,F401
import tensorflow_transform.beam  # noqa: E402,F401
import tf_keras  # noqa: E402,F401
from tfx.components.evaluator import executor as evaluator_executor  # noqa: E402,F401
from tfx.components.statistics_gen import executor as statistics_executor  # noqa: E402,F401
from tfx.components.trainer import executor as trainer_executor  # noqa: E402,F401
from tfx.components.transform import executor as transform_executor  # noqa: E402,F401
from tfx.dsl.components.common import resolver  # noqa: E402,F401
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner  # noqa: E402,F401

from components import anomalies_gate  # noqa: E402,F401
from pipeline import pipeline  # noqa: E402,F401
from runners import kubeflow_spec, run_id_dag_runner, run_summary  # noqa: E402,F401
