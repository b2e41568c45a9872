# One-command entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned to the local CPU build; torchvision 0.28.0 is the release built against it
# (timm needs it importable, see tests/torch_compat.py).
PIP_INSTALL := $(BIN)/pip install --disable-pip-version-check -q

.PHONY: venv test lint clean

$(BIN)/levit-tf: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -e ".[test]"
	touch $@

venv: $(BIN)/levit-tf

lint: venv
	$(BIN)/ruff check .

test: venv lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
