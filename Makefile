# The two commands a fresh machine needs: `make run` and `make test`.
PY := .venv/bin/python
MODEL ?= cnn
# apt-get needs root; as another user go through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: env run test test-fast chromium java job-servers kubeflow kubeflow-local bench movielens replay

env:
	@./scripts/bootstrap_env.sh

# The evaluation report tests render report.html in headless Chromium.
chromium:
	@[ -x /usr/bin/chromium ] || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Beam's job servers run in a JVM: Java from Debian's packages.
java:
	@command -v java >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; }

# The jars of Beam's Flink and Spark job servers (`--beam-preset flink|spark`),
# fetched from Maven Central once into ~/.cache/tfx-model-factory
# (TFX_MODEL_FACTORY_CACHE), each checked against components/job_server_locks/;
# a run never downloads them.
job-servers: env java
	$(PY) -m components.job_servers fetch

# MovieLens-100k may not be redistributed, so it is fetched and converted here
# (data/movielens/README.md); env is order-only so that it does not make the
# file look stale on every run.
data/movielens/ml-100k/u.data: | env
	$(PY) -m data.movielens.fetch_ml100k

movielens: data/movielens/ml-100k/u.data

run: env $(if $(filter two_tower,$(MODEL)),data/movielens/ml-100k/u.data)
	$(PY) local_runner.py --model $(MODEL)

# On every core (pytest-xdist): tests/conftest.py keeps the tests that share a
# pipeline run on one worker and queues the end-to-end groups first.
PYTEST := $(PY) -m pytest -n auto --no-loadscope-reorder

# The whole suite; .ci/run runs this.
test: env chromium job-servers data/movielens/ml-100k/u.data
	$(PYTEST) tests

# The unit tier, for iterating: no pipeline run (e2e), no trained model, no
# Beam pass over shipped data and no fresh interpreter (integration; pytest.ini).
test-fast: env chromium job-servers data/movielens/ml-100k/u.data
	$(PYTEST) -m "not e2e and not integration" tests

# Compiles every family for Kubeflow Pipelines into build/kubeflow/<target>/<family>.yaml.
# Override the placeholders: make kubeflow TARGET=kfp|vertex IMAGE=... KFP_ROOT=gs://...
#   KFP_ARGS="--beam-preset dataflow ..."
TARGET ?= kfp
IMAGE ?= gcr.io/YOUR_PROJECT/tfx-model-factory:latest
KFP_ROOT ?= gs://YOUR_BUCKET/tfx-model-factory
KFP_ARGS ?=
kubeflow: env
	@for family in $$($(PY) -c 'from pipeline import configs; print(*sorted(configs.FAMILIES))'); do \
	  $(PY) kubeflow_runner.py --model $$family --target $(TARGET) --image $(IMAGE) \
	    --pipeline-root $(KFP_ROOT)/pipeline_root --data-root $(KFP_ROOT)/data \
	    --serving-root $(KFP_ROOT)/serving --tflite-root $(KFP_ROOT)/tflite $(KFP_ARGS) \
	    --output build/kubeflow/$(TARGET)/$$family.yaml || exit 1; \
	done

# Compiles MODEL's spec (target kfp) with local roots under outputs/kubeflow-local/
# and executes it task by task as open-source Kubeflow Pipelines would.
kubeflow-local: env
	$(PY) -m runners.kubeflow_local --model $(MODEL) $(KFP_LOCAL_ARGS)

# Replays MODEL's real data span after span (bench/replay.py): writes
# outputs/reports/MODEL/replay/replay.html and replay.json. REPLAY_ARGS="--with-cold"
# also trains every span from scratch, to compare.
REPLAY_ARGS ?=
replay: env $(if $(filter two_tower,$(MODEL)),data/movielens/ml-100k/u.data)
	$(PY) -m bench.replay --model $(MODEL) $(REPLAY_ARGS)

# Measurements, not tests: writes bench/results/*.json and BENCHMARKS.md (~1 h).
bench: env
	$(PY) bench/run_bench.py $(BENCH_ARGS)
