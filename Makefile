# Two commands on a fresh machine: `make run` and `make test`. Nothing else to install.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_VENV := .venv-bench
APPS   ?= apps.customer.app apps.basket.app apps.orders.app
GATEWAY ?= apps.gateway
# auto: Apache Kafka where Java 17+ is installed, else the dev broker (or kafka, dev)
BROKER ?= auto
# More options of `streamkit dev`, e.g. RUN_ARGS="--gateway-port 8081 --base-port 7066"
RUN_ARGS ?=

.PHONY: install run test test-deep lint bench clean browser demo

$(STAMP): pyproject.toml apps/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -e ./apps
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/streamkit dev $(APPS) --gateway $(GATEWAY) --broker $(BROKER) $(RUN_ARGS)

# A user's journey with curl against `make run` (in another terminal).
demo:
	bash apps/demo.sh

# The UI test drives a real headless browser: Debian's chromium.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# Style, types and who may import whom (pyproject.toml: [tool.ruff], [tool.mypy],
# [tool.importlinter]; docs/architecture.md).
lint: $(STAMP)
	$(BIN)/ruff check streamkit bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two test files at a time (pytest-xdist), each process with a Kafka node of its own: most
# worker tests spend their time waiting on brokers and workers, not on the CPU.
TEST_WORKERS ?= 2
test: lint browser
	STREAMKIT_TEST_CWD=$(CURDIR) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The property tests (windows against their oracle, stream-stream joins against theirs) with
# more examples than `make test` runs (60 and 20): minutes of searching, for before a release
# or after a change to windows or joins. Larger: make test-deep WINDOW_EXAMPLES=2000.
WINDOW_EXAMPLES ?= 300
JOIN_EXAMPLES ?= 100
test-deep: $(STAMP)
	WINDOWS_PROPERTY_EXAMPLES=$(WINDOW_EXAMPLES) STREAM_JOIN_PROPERTY_EXAMPLES=$(JOIN_EXAMPLES) \
	STREAMKIT_TEST_CWD=$(CURDIR) $(BIN)/python -m pytest tests/unit/test_windows_property.py \
	tests/unit/test_stream_join.py

$(BENCH_VENV)/.installed: pyproject.toml bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e . -r bench/requirements.txt
	touch $@

# The Kafka Streams cases (bench/kafka_streams): built by Maven once, again only when the pom
# or a source changes (bench/common.py's kafka_streams_build checks the same stamp).
KS_DIR   := bench/kafka_streams
KS_BUILT := $(KS_DIR)/target/.built
$(KS_BUILT): $(KS_DIR)/pom.xml $(wildcard $(KS_DIR)/src/main/java/streamkit/bench/*.java)
	mvn -q -B -f $(KS_DIR)/pom.xml package
	touch $@

# Every benchmark, one at a time, on one Apache Kafka node started for the run; one results
# file, bench/results/latest.json (bench/README.md). E.g. make bench BENCH_ARGS="--only w1,gateway"
# or BENCH_ARGS="--broker dev" (bench/results/devbroker.json).
BENCH_ARGS ?=
bench: $(BENCH_VENV)/.installed $(KS_BUILT)
	$(BENCH_VENV)/bin/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .run streamkit-data $(KS_DIR)/target
