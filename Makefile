# One-command entry points. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned to the local CPU build; torchvision 0.28.0 is the release built against it
# (timm needs it importable, see levit_tf/testing/torch_compat.py).
PIP_INSTALL := $(BIN)/pip install --disable-pip-version-check -q
KERAS_HUB := 0.32.0

.PHONY: venv test lint clean bench floors peers demo docs docs-serve

$(BIN)/levit-tf: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) -e ".[test,docs]"
	@# keras-hub for its tests, beside the pinned tensorflow-cpu: its run-time needs for image
	@# models, without tensorflow-text (which requires the `tensorflow` distribution; users get
	@# that clean set from the [keras-hub] extra, docs/keras-hub.md)
	$(PIP_INSTALL) --no-deps "keras-hub==$(KERAS_HUB)"
	$(PIP_INSTALL) absl-py packaging regex rich "kagglehub!=1.0.1" "kagglesdk==0.1.28" \
		sentencepiece tokenizers grain
	touch $@

venv: $(BIN)/levit-tf

lint: venv
	$(BIN)/ruff check .

test: venv lint
	$(BIN)/python -m pytest -q

# The documentation site (mkdocs.yml, docs/): site/ as CI builds it, or served with live reload.
# tests/docs/test_site.py builds it too and renders every page in headless Chromium.
docs: venv
	$(BIN)/mkdocs build --strict

docs-serve: venv
	$(BIN)/mkdocs serve

# Fine-tune on the bundled digits, export SavedModel + TFLite, evaluate: one table (offline).
# make demo CHECKPOINT=facebook/levit-128S starts from a converted checkpoint instead.
DEMO_ARGS ?=
demo: venv
	$(BIN)/python scripts/demo.py $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT),) $(DEMO_ARGS)

# The litert-torch peer needs packages (jax, litert-converter, torchao) kept out of .venv.
.venv-peers/bin/python:
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/pip install --disable-pip-version-check -q torch==2.13.0 litert-torch==0.10.0 \
		pyyaml huggingface_hub safetensors
	.venv-peers/bin/pip install --disable-pip-version-check -q --no-deps timm==1.0.29 \
		torchvision==0.28.0

peers: .venv-peers/bin/python

bench: venv peers
	$(PIP_INSTALL) -e ".[test,bench]"
	$(BIN)/python -m benchmarks.speed

# Where the time goes and what no graph change can beat: the training step by op category
# (TF profiler vs torch.profiler) and the matmul-only TFLite skeleton (~10 min).
floors: venv peers
	$(PIP_INSTALL) -e ".[test,bench]"
	for preset in levit-128S levit-256; do \
		$(BIN)/python -m benchmarks.profile_training --preset $$preset || exit 1; \
		$(BIN)/python -m benchmarks.matmul_floor --preset $$preset --modes float32 dynamic \
			|| exit 1; \
	done

clean:
	rm -rf $(VENV) .venv-peers build site *.egg-info
