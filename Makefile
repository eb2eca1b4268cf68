# `make demo` and `make test` set everything up on a machine with only Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean chromium lab-docs

# pip compiles the bytecode on one core; compileall uses all of them (on two cores the set-up
# takes a minute less). One file of torch's, for newer Pythons, fails there as under pip.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -e '.[dev,tensorboard,lightning,ray,transformers,wandb,mlflow]'
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gradsight demo

# Two workers, one torch thread each: the tests are single-threaded work, and two threads per
# worker on two cores oversubscribe them (several times slower). Tests that share an expensive
# session fixture run in one worker (tests/conftest.py).
test: $(STAMP) chromium
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadgroup

# The report's browser test needs Debian's chromium; installed when we are root with apt,
# otherwise that one test is skipped with its reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser test will be skipped"; \
	  else echo "chromium not installed: the browser test will be skipped"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@for script in benchmarks/*.py; do $(BIN)/python $$script; done

# The README's lab table and docs/lab/*.png, from a full-mode run of every experiment.
lab-docs: $(STAMP)
	$(BIN)/gradsight lab run all --workers 2 --out build/lab
	$(BIN)/python scripts/lab_docs.py build/lab

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
