# mediagw: `make run` starts the gateway, `make test` runs every check. Both bootstrap .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: run test lint typecheck unit system-deps dashboard-assets bench proto clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

# Debian's ffmpeg CLI (the tests' RTMP client, the benchmark's baseline; PyAV has its own libs)
# and Chromium (browser tests), plus hls.js from npm for the browser tests.
system-deps:
	@missing=""; \
	for tool in ffmpeg ffprobe chromium; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing ffmpeg chromium (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg chromium >/dev/null; \
	  else \
	    echo "missing:$$missing (e.g. 'sudo apt-get install ffmpeg chromium'); tests that need them will skip"; \
	  fi; \
	fi
	@if command -v npm >/dev/null 2>&1 && [ ! -f tests/browser/node_modules/hls.js/dist/hls.min.js ]; then \
	  (cd tests/browser && npm ci --no-audit --no-fund --silent) || echo "npm ci failed: browser tests will skip"; \
	fi
	@$(MAKE) --no-print-directory dashboard-assets

# hls.js for the dashboard's players, from npm (not in the repository): copied into the package,
# which serves it at /dashboard/hls.min.js. Without npm the dashboard plays with native HLS only.
DASHBOARD := mediagw/api/dashboard
HLS_JS    := $(DASHBOARD)/static/vendor/hls.min.js
dashboard-assets:
	@if [ ! -f $(HLS_JS) ]; then \
	  if command -v npm >/dev/null 2>&1 \
	     && (cd $(DASHBOARD) && npm ci --no-audit --no-fund --silent); then \
	    mkdir -p $(dir $(HLS_JS)) && cp $(DASHBOARD)/node_modules/hls.js/dist/hls.min.js $(HLS_JS); \
	  else \
	    echo "hls.js not installed (needs npm): the dashboard's players fall back to native HLS"; \
	  fi; \
	fi

run: $(STAMP) dashboard-assets
	$(BIN)/mediagw run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite in two runs: the files of PARALLEL (gateways fed by live-paced pushes: mostly waiting,
# a fresh database, Redis prefix and ports each) on WORKERS pytest-xdist workers, a file per worker
# at a time; then the rest one test at a time (benches and browsers measure time and CPU).
# With ARGS: one run of what ARGS names, as given.
WORKERS  ?= 2
PARALLEL := tests/e2e tests/platform
unit: $(STAMP) system-deps
ifeq ($(strip $(ARGS)),)
	@rc=0; \
	$(BIN)/pytest -q --durations=20 -n $(WORKERS) --dist loadfile $(PARALLEL) || rc=$$?; \
	$(BIN)/pytest -q --durations=20 $(addprefix --ignore=,$(PARALLEL)) || rc=$$?; \
	exit $$rc
else
	$(BIN)/pytest -q --durations=30 $(ARGS)
endif

test: lint typecheck unit

bench: $(STAMP) system-deps
	$(BIN)/mediagw bench ingest $(ARGS)

# Regenerate the protobuf code (and its type stubs) from mediagw/livepeer/proto/lp_rpc.proto.
proto: $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -I mediagw/livepeer/proto \
	  --python_out=mediagw/livepeer/proto --mypy_out=mediagw/livepeer/proto \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy mediagw/livepeer/proto/lp_rpc.proto

clean:
	rm -rf $(DASHBOARD)/node_modules $(DASHBOARD)/static/vendor
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
