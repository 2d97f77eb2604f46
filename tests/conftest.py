"""Test-session set-up: legacy Keras before TensorFlow loads, quiet TF logs,
and the scheduling that lets `make test` run the suite on every core.

Under pytest-xdist (the Makefile's `test` and `test-fast` targets) every test
module goes whole to one worker, so its module-scoped pipeline runs and
trained models are made once; the tests that assert on one session-scoped run
(those of SHARED_RUN_MODULES that use it, directly or through fixtures of
their module or of the session's plugins) go together to one worker, so that
run is made once too, while the other tests of those modules stay free to run
on another worker.
Workers take the end-to-end tests first, then the integration tests (those
that train a model, run Beam over shipped data or start a fresh interpreter),
then the unit tests, each tier in collection order: the short unit tests fill
the end of the run instead of one worker waiting behind the other's pipeline
run or trained model. `make test-fast` runs the unit tier alone.

(xdist's own `--dist loadgroup` cannot do this here: it renames test ids
through an attribute pytest 9 no longer reads, so its groups are ignored.)
"""
import ast
import functools
import os
import sys

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Under xdist each worker (and every pipeline it starts, which inherits the
# environment) gets its share of the cores for TensorFlow's op-level thread
# pool, so N workers do not run N pools as wide as the machine.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
  _THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
  os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _THREADS)
  os.environ.setdefault("OMP_NUM_THREADS", _THREADS)
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO_ROOT)

pytest_plugins = ["tests.cnn_history", "tests.lstm_run", "tests.raced_runs",
                  "tests.trained_models"]
# {session fixture: the modules with tests that use it}: one worker runs those tests.
SHARED_RUN_MODULES = {
    "cnn_history": ("tests/test_cnn_e2e.py", "tests/test_eval_report.py",
                    "tests/test_reliability_e2e.py", "tests/test_replay.py",
                    "tests/test_spark_e2e.py"),
    "cnn_trained": ("tests/test_cnn_module.py", "tests/test_tflite_exporter.py",
                    "tests/test_predict_cli.py", "tests/test_distributed_training.py",
                    "tests/test_compression.py"),
    # The module and TFLite tests use its Trainer's model (`lstm_trained`).
    "lstm_run": ("tests/test_lstm_e2e.py", "tests/test_lstm_module.py",
                 "tests/test_lstm_tflite.py"),
    "two_tower_trained": ("tests/test_two_tower_module.py", "tests/test_two_tower_tflite.py",
                          "tests/test_distributed_training.py", "tests/test_compression.py"),
    "raced_runs": ("tests/test_reliability_e2e.py", "tests/test_flink_e2e.py"),
}


def _parameters(path: str, fixtures_only: bool = False) -> dict:
  """{function: its parameter names} of a file's top-level functions (its
  fixtures alone if `fixtures_only`)."""
  with open(os.path.join(_REPO_ROOT, path), encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
  if fixtures_only:
    functions = [node for node in functions
                 if any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list)]
  return {node.name: {arg.arg for arg in node.args.args} for node in functions}


@functools.lru_cache(maxsize=None)
def _plugin_fixtures() -> dict:
  """{fixture: its parameter names} of the fixtures pytest_plugins define."""
  fixtures = {}
  for plugin in pytest_plugins:
    fixtures.update(_parameters(plugin.replace(".", "/") + ".py", fixtures_only=True))
  return fixtures


@functools.lru_cache(maxsize=None)
def tests_using(module_path: str, fixture: str) -> frozenset:
  """The test functions of a module that use `fixture`, directly or through
  fixtures defined in the module or in pytest_plugins (read from their
  source: the xdist controller schedules by test id and collects nothing
  itself). A module's fixture overrides a plugin's of the same name, as in
  pytest."""
  parameters = {**_plugin_fixtures(), **_parameters(module_path)}
  users, grown = {fixture}, True
  while grown:
    grown = False
    for name, names in parameters.items():
      if name not in users and names & users:
        users.add(name)
        grown = True
  return frozenset(name for name in users if name.startswith("test_"))


def worker_group(nodeid: str) -> str:
  """The unit of work a test belongs to: its shared run's if it uses one,
  else its module's."""
  module, _, test = nodeid.partition("::")
  for group, modules in SHARED_RUN_MODULES.items():
    if module in modules and test.split("[", 1)[0] in tests_using(module, group):
      return group
  return module


# A test that uses one of these (directly or through another fixture) needs
# a model trained through tft_beam and run_fn (tests/trained_models.py).
TRAINED_MODEL_FIXTURES = frozenset({"cnn_trained", "two_tower_trained"})
# A test that uses one of these needs a session's pipeline run: `lstm_trained`
# is the LSTM pipeline run's model (tests/lstm_run.py).
PIPELINE_RUN_FIXTURES = frozenset({"cnn_history", "lstm_run", "raced_runs"})
# The tiers, slowest first: workers take the long units of work first, so the
# short unit tests fill the end of the run instead of one worker finishing a
# trained model's tests while the other waits.
TIERS = ("e2e", "integration", "unit")


def tier(item) -> str:
  """The item's tier: e2e or integration by its marker, else unit."""
  return next((name for name in TIERS[:-1] if item.get_closest_marker(name)), TIERS[-1])


@pytest.hookimpl(tryfirst=True)  # Before `-m` deselects by marker.
def pytest_collection_modifyitems(items):
  """Marks the tests that need a pipeline run as end-to-end tests and those
  that need a trained model as integration tests, then orders the tests by
  tier, the order within each tier kept."""
  for item in items:
    fixtures = set(getattr(item, "fixturenames", ()))
    if PIPELINE_RUN_FIXTURES & fixtures:
      item.add_marker(pytest.mark.e2e)
    elif TRAINED_MODEL_FIXTURES & fixtures:
      item.add_marker(pytest.mark.integration)
  items.sort(key=lambda item: TIERS.index(tier(item)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
  # pylint: disable=import-outside-toplevel  (only under xdist)
  from xdist.scheduler import LoadScopeScheduling

  class SharedRunScheduling(LoadScopeScheduling):
    """xdist's per-module scheduling, with the tests of each shared run as one unit."""

    def _split_scope(self, nodeid: str) -> str:
      return worker_group(nodeid)

  return SharedRunScheduling(config, log)
