# mediagw: `make run` starts the gateway, `make test` runs every check. Both bootstrap .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: run test lint typecheck unit system-deps bench proto clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

# Debian's ffmpeg CLI: the tests' RTMP client and the benchmark's baseline (PyAV has its own libs).
system-deps:
	@if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing ffmpeg (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else \
	    echo "ffmpeg CLI missing: install it (e.g. 'sudo apt-get install ffmpeg'); tests that need it will skip"; \
	  fi; \
	fi

run: $(STAMP)
	$(BIN)/mediagw run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) system-deps
	$(BIN)/pytest -q $(ARGS)

test: lint typecheck unit

bench: $(STAMP) system-deps
	$(BIN)/mediagw bench ingest $(ARGS)

# Regenerate the protobuf code (and its type stubs) from mediagw/livepeer/proto/lp_rpc.proto.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I mediagw/livepeer/proto \
	  --python_out=mediagw/livepeer/proto --mypy_out=mediagw/livepeer/proto \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy mediagw/livepeer/proto/lp_rpc.proto

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
