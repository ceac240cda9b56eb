# Two commands do everything: `make run` and `make test`. Both create .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PLOOMBER_STATS_ENABLED := false
export PYTHONHASHSEED := 0

.PHONY: help install tools run test cov container-test bench serve dashboard scheduled-run operate replay models \
  promote rollback mlflow-ui clean distclean

help:
	@echo "make run    - install (if needed), build the pipeline, render reports/"
	@echo "make test   - install (if needed), run the whole test suite (pytest + nbval)"
	@echo "make cov    - the whole test suite under coverage; fails below 90% of src/helpers"
	@echo "make container-test - build the image with podman, run it: /health, /predict from a mounted registry, non-root"
	@echo "make bench  - time the pipeline stages and the endpoint, write bench/results.json, print the targets table"
	@echo "make serve  - serve the registry's champion on http://127.0.0.1:8000 (POST /predict, GET /metrics), following promotions"
	@echo "make dashboard - the Streamlit dashboard on http://127.0.0.1:8501 (FROM=replay: against make replay's folder)"
	@echo "make scheduled-run - one unattended run into runs/<time>/, published to reports/ on success"
	@echo "make operate - one operating cycle: inbox -> refit -> forecast log -> monitoring -> alerts"
	@echo "make replay - replay the data after REPLAY_TRAIN_UNTIL week by week through the cycle, into replay/"
	@echo "make models - the registered model's versions: aliases, training range, CV MAE, data hash, commit"
	@echo "make promote VERSION=N - make version N the champion;  make rollback - the previous champion again"
	@echo "make mlflow-ui - the MLflow UI of the tracking store on http://127.0.0.1:$(MLFLOW_PORT)"
	@echo "make clean  - remove products, reports and the embedded warehouse"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever the declared or locked dependencies change.
$(STAMP): pyproject.toml requirements/constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $(STAMP)

install: $(STAMP)

# Debian programs the benchmarks and tests use, each installed only when missing: wrk (make bench),
# chromium (the browser check), prometheus and promtool (the alerting rules' tests and the scrape
# test, tests/app/test_prometheus.py), podman with runc and debootstrap (make container-test).
# Prometheus comes without its recommended node exporter, and the server its package starts on a
# systemd host is stopped and disabled: the tests start their own on a free port.
tools:
	@SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); missing=""; prometheus=""; \
	for tool in wrk chromium podman runc debootstrap; do \
	  command -v $$tool > /dev/null || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; done; \
	command -v prometheus > /dev/null && command -v promtool > /dev/null || prometheus=prometheus; \
	[ -z "$$missing$$prometheus" ] || $$SUDO apt-get update -qq || exit 1; \
	[ -z "$$missing" ] || DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing > /dev/null || exit 1; \
	[ -z "$$prometheus" ] || { \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus > /dev/null || exit 1; \
	  [ ! -d /run/systemd/system ] || $$SUDO systemctl disable --now prometheus > /dev/null 2>&1 || true; }

# The programs exit 0 ok, 1 failed, 2 refused input, 3 busy / warehouse unavailable (README, Exit codes).
# GNU make itself exits 2 whenever a recipe fails and only names the program's code in its
# message ("Error 3"): a scheduler that acts on the code calls the program, not make.
run: $(STAMP)
	$(BIN)/python -m helpers.app.pipeline build

# The whole suite: pytest-xdist spreads the test files over the cores (a file's tests, and a
# notebook's cells, stay together), longest files first (conftest.py orders them).
# One BLAS/OpenMP thread per process: xdist runs a worker per core already, and OpenBLAS's own
# threads (two per process here) spin while waiting for each other, so two workers with two
# threads each fight for two cores (a statsmodels fit took 60% more CPU with them).
PYTEST := -m pytest -n auto --dist loadfile --no-loadscope-reorder
ONE_THREAD := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
test: $(STAMP)
	$(ONE_THREAD) $(BIN)/python $(PYTEST)

# The same suite under coverage, failing below 90% of src/helpers; CI runs it after make test.
# It costs ~30% more CPU on Python 3.11, whose tracer sees every line. coverage run, not
# pytest-cov: nbval's pytest-cov hook hangs starting the kernel. Each xdist worker measures
# itself (conftest.py) and `coverage combine` merges their data.
cov: $(STAMP)
	$(BIN)/python -m coverage erase
	$(ONE_THREAD) $(BIN)/python -m coverage run $(PYTEST)
	$(BIN)/python -m coverage combine -q
	$(BIN)/python -m coverage report

# The image (Containerfile) built with podman and run: tests/container (README, Containers). Not part
# of make test: the first build takes minutes (the locked dependencies), later ones reuse podman's
# layer cache. Needs root for debootstrap (the base image, made once) and `make tools`.
# CONTAINER_BASE=python:3.11-slim builds on that image instead, where a registry is reachable.
container-test: $(STAMP)
	HELPERS_CONTAINER_TEST=1 PYTHON=$(PYTHON) $(if $(CONTAINER_BASE),HELPERS_CONTAINER_BASE=$(CONTAINER_BASE)) \
	  $(BIN)/python -m pytest tests/container -p no:cacheprovider -s -q

bench: $(STAMP) tools
	$(BIN)/python bench/run.py --output bench/results.json

# FROM=<folder> (make replay's `replay`) points the service and the dashboard at that folder's
# warehouse, registry, products and forecast log instead of the project's.
FROM ?=
FROM_ENV = $(if $(FROM),HELPERS_WAREHOUSE_PATH=$(FROM)/warehouse.duckdb HELPERS_MLFLOW_DIR=$(FROM)/mlflow \
  HELPERS_PRODUCTS=$(FROM)/products HELPERS_FORECAST_LOG_DIR=$(FROM)/forecast_log)
serve: $(STAMP)
	$(FROM_ENV) $(BIN)/python -m helpers.app.service

# The dashboard asks the service at dashboard_service_url (start it with make serve) and reads
# the warehouse read-only. Streamlit's usage statistics are off.
DASHBOARD_PORT ?= 8501
dashboard: $(STAMP)
	$(FROM_ENV) $(BIN)/python -m streamlit run src/helpers/dashboard/app.py --server.address 127.0.0.1 \
	  --server.port $(DASHBOARD_PORT) --server.headless true --browser.gatherUsageStats false

scheduled-run: $(STAMP)
	$(BIN)/python -m helpers.app.scheduler

operate: $(STAMP)
	$(BIN)/python -m helpers.app.cycle

# The replay picks its model with the fast profile's comparison (REPLAY_PROFILE= for the full one).
REPLAY_PROFILE ?= test
REPLAY_TRAIN_UNTIL ?= 2014-09-30
REPLAY_STEP ?= 7D
replay: $(STAMP)
	HELPERS_PROFILE=$(REPLAY_PROFILE) $(BIN)/python -m helpers.app.replay --train-until $(REPLAY_TRAIN_UNTIL) \
	  --step $(REPLAY_STEP) $(if $(REPLAY_FILE),--file $(REPLAY_FILE))

# The model registry (helpers.lifecycle.registry): exit 0 done, 2 refused (nothing changed), 3 store unavailable.
models: $(STAMP)
	$(BIN)/python -m helpers.lifecycle.registry list

promote: $(STAMP)
	@[ -n "$(VERSION)" ] || { echo "make promote needs the version: make promote VERSION=N (make models lists them)" >&2; exit 2; }
	$(BIN)/python -m helpers.lifecycle.registry promote $(VERSION)

rollback: $(STAMP)
	$(BIN)/python -m helpers.lifecycle.registry rollback

# The MLflow UI over the local tracking store (mlflow_dir; MLFLOW_TRACKING_URI names a server with its own UI).
MLFLOW_PORT ?= 5000
mlflow-ui: $(STAMP)
	$(BIN)/python -m helpers.lifecycle.tracking ui --port $(MLFLOW_PORT)

clean:
	rm -rf products products-* products.failed-* reports reports.[0-9]* monitoring monitoring.[0-9]* replay \
	  data/warehouse.duckdb data/warehouse.duckdb.wal

distclean: clean
	rm -rf $(VENV)
