# Two commands on a fresh clone:  make demo  |  make test
# Both create .venv (Python 3.11) and install the pinned dependencies if needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STAMP_RUN := $(VENV)/.installed-run
CONSTRAINTS := requirements/constraints.txt
export NUMPY_MADVISE_HUGEPAGE ?= 0

.PHONY: install demo test test-fast browser test-lowest lint sample bench constraints clean

install: $(STAMP)

# The pinned set, installed by uv (from PyPI into .venv: ~50 s for everything on 2 cores, against ~95 s
# for pip); pip installs the same pins when uv cannot (no network to its index, another certificate set).
# uv tries its cache alone first (--offline), then the index: an index that answers "modified" for pyspark's
# 430 MB source archive made every install download and build it again (37 s in all, against 16 s from the
# cache). Compiled to bytecode as pip does: without it every process imported MLflow & co. in 7.3 s instead
# of 2.8 s (site-packages got no __pycache__), which made the suite two minutes slower.
EVERYTHING := -e '.[dev,spark]'
PIP_INSTALL = $(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS)
UV_INSTALL = $(BIN)/uv pip install --python $(BIN)/python --system-certs --compile-bytecode --quiet -c $(CONSTRAINTS)
define pinned
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==0.13.9' \
	  && { $(UV_INSTALL) --offline $(1) 2>/dev/null || $(UV_INSTALL) $(1); } \
	  || (echo "uv could not install; pip installs the same pins" && $(PIP_INSTALL) $(1))
endef

# The package alone (what the demo needs), and everything (tests, notebooks' kernel, Spark).
$(STAMP_RUN): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(call pinned,-e .)
	@touch $(STAMP_RUN)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(call pinned,$(EVERYTHING))
	@touch $(STAMP) $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(BIN)/churnmodel validate --config configs/partner_churn.yaml
	@mkdir -p outputs
	$(BIN)/churnmodel features --config configs/partner_churn.yaml --out outputs/features.parquet --metadata outputs/features.csv
	$(BIN)/churnmodel train --config configs/partner_churn.yaml --summary outputs/train_summary.json
	$(BIN)/churnmodel explain --config configs/partner_churn.yaml --as-of 2025-10-01 --partner P001035
	$(BIN)/churnmodel explain --config configs/partner_churn.yaml --as-of 2025-10-01 --partner P001035 --horizon 365
	$(BIN)/churnmodel score --config configs/partner_churn.yaml --as-of 2026-01-01 --out outputs/scores.xlsx --report outputs/report.html
	@echo "Done. Open outputs/report.html in a browser and outputs/scores.xlsx in a spreadsheet;"
	@echo "the training runs: $(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db, then http://127.0.0.1:5000"

test: $(STAMP) browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	CHURNMODEL_BROWSER=required $(BIN)/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder -q --durations=15

# The inner loop: everything but the slow and heavy tests, the fuzzers with 60 examples instead of 300
# (about a minute and a half on 2 cores).
test-fast: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	CHURNMODEL_FUZZ_EXAMPLES=60 $(BIN)/python -m pytest -n 2 -q -m "not slow and not heavy" --durations=5

# The report is looked at in a real browser by the tests: Debian's chromium, installed when missing (as root).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "make test needs Debian's chromium: apt-get install chromium"; exit 1; }

# The lowest versions pyproject.toml allows (requirements/lowest.txt: uv pip compile --resolution
# lowest-direct): what depends on library versions (dates, CSV and XLSX round trips, ids, headers)
# must behave the same there. typer 0.15 triggers click's deprecation warnings, hence -W.
LOWEST := .venv-lowest
test-lowest:
	@test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/lowest.txt
	$(LOWEST)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(LOWEST)/bin/python -m pytest -n 2 -q -p no:cacheprovider -W "ignore::DeprecationWarning" tests/test_edges.py tests/test_bad_inputs.py tests/test_data.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

# Regenerate the committed sample (the exact command is also in data/sample/README.md).
sample: $(STAMP)
	$(BIN)/churnmodel simulate --partners 2000 --months 36 --seed 7 --start 2023-01-01 --out data/sample

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[bench]'
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/bench_features.py --events 1000000
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_explain.py
	$(BIN)/python benchmarks/bench_score.py
	$(BIN)/python benchmarks/bench_survival.py
	$(BIN)/python benchmarks/bench_quality.py
	$(BIN)/python benchmarks/bench_uplift.py

# Re-pin after changing dependencies in pyproject.toml.
constraints: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check | grep -v -e '^churnmodel' -e '^uv==' > $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis mlruns *.db
