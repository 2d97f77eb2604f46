# The two commands a fresh machine needs: `make run` and `make test`.
PY := .venv/bin/python
MODEL ?= cnn

.PHONY: env run test

env:
	@./scripts/bootstrap_env.sh

run: env
	$(PY) local_runner.py --model $(MODEL)

test: env
	$(PY) -m pytest tests
