# Two commands: `make study` runs the whole study on the embedded synthetic data set,
# `make test` runs the test suite. Each creates .venv and installs aufacs on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first, by exact version, so pip takes the build on this machine's disk;
# elsewhere override it, e.g. `make test TORCH="torch torchvision"`. The landmarks extra
# (dlib, non-commercial 68-point model) is installed so the tests can check it, and so is the
# example plug-in model (examples/plain_cnn, docs/your_model.md) that the tests train.
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: study test lint clean-venv

$(BIN)/.installed: pyproject.toml examples/plain_cnn/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev,landmarks]"
	$(BIN)/pip install --quiet -e examples/plain_cnn
	touch $@

study: $(BIN)/.installed
	$(BIN)/aufacs study

# The suite runs on every core (pytest-xdist), a whole test file per worker so that a file's
# fixtures (the smoke study, trained runs) are built once; each test uses one torch thread.
# The package is byte-compiled first: where PYTHONDONTWRITEBYTECODE is set, every test
# subprocess and notebook kernel would otherwise compile it from source again.
test: $(BIN)/.installed
	$(BIN)/python -m compileall -q aufacs tests benchmarks
	$(BIN)/python -m pytest -q -n auto --dist loadfile

lint: $(BIN)/.installed
	$(BIN)/ruff check aufacs tests benchmarks
	$(BIN)/ruff format --check aufacs tests benchmarks

clean-venv:
	rm -rf $(VENV)
