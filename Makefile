# The two commands of the README: `make run` and `make test`. Both create .venv and install
# the pinned dependencies into it when pyproject.toml is newer than the last install: `make
# run` the runtime only (the service), `make test` the dev extra (what-if, tools, tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime
PORT ?= 50051
HOST ?= 127.0.0.1
PROTOS := $(wildcard proto/router/v1/*.proto)
# protoc finds the mypy-protobuf plugins (protoc-gen-mypy*) on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint imports typecheck protolint proto proto-check pytest sample clean

$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUNTIME)

run: $(RUNTIME)
	$(BIN)/router serve --host $(HOST) --port $(PORT)

test: lint imports typecheck protolint proto-check pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The import contracts of pyproject.toml (the layers of docs/architecture.md).
imports: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy models router benchmarks

protolint: $(STAMP)
	cd proto && ../$(BIN)/buf lint

# Generated code lives in router/v1/ and is committed so that a plain `pip install` works;
# `make proto` regenerates it and `make test` fails when it is stale.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=. --mypy_out=. \
		--grpc_python_out=. --mypy_grpc_out=. $(PROTOS)

proto-check: $(STAMP)
	rm -rf $(VENV)/proto-check && mkdir -p $(VENV)/proto-check
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=$(VENV)/proto-check \
		--mypy_out=$(VENV)/proto-check --grpc_python_out=$(VENV)/proto-check \
		--mypy_grpc_out=$(VENV)/proto-check $(PROTOS)
	diff -r -x __init__.py -x __pycache__ $(VENV)/proto-check/router/v1 router/v1 \
		|| (echo "router/v1 is stale: run 'make proto'" && exit 1)

pytest: $(STAMP)
	$(BIN)/pytest -q

sample: $(RUNTIME)
	$(BIN)/router sample --out sample

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
