# Two commands do all the set-up on a fresh machine:
#   make demo   - the main job end to end on the built-in synthetic data
#   make test   - the default test suite (+ ruff and mypy)
# Both create/refresh the project venv (.venv) on their own.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARCH   := $(shell uname -m)
# pip on this machine serves these torch builds from local disk
ifeq ($(ARCH),aarch64)
TORCH_PINS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
endif
export HF_HUB_OFFLINE := 1
export PYTHONDONTWRITEBYTECODE := 1
PYTEST_WORKERS ?= 2
DEMO_OUT ?= runs/demo

.PHONY: venv test test-slow test-all lint demo bench bench-quick docs clean

venv: $(STAMP)

# The grad-cam adapter (adapters/colocam_gradcam) ships in the main wheel and
# registers through its entry point: drop what an older venv or checkout has
# of the former separate colocam-gradcam distribution, so it registers once.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip uninstall -q -y colocam-gradcam
	rm -rf adapters/colocam_gradcam.egg-info
	$(PY) -m pip install -q -e '.[test,docs]' $(TORCH_PINS)
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy colocam_plugin adapters/colocam_gradcam

test: lint
	$(PY) -m pytest -m "not slow" -n $(PYTEST_WORKERS) -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

test-all: lint
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/colocam demo --out $(DEMO_OUT)

bench: $(STAMP)
	$(PY) -m benchmarks score losses step kornia_ops synthyto classifier
	$(PY) -m benchmarks ablation -- --groups bar table2 n_frames styles --out benchmarks/results/ablation
	$(PY) -m benchmarks ablation -- --preset adversarial --groups bar table2 --work runs/ablation-adversarial --out benchmarks/results/ablation_adversarial

bench-quick: $(STAMP)
	$(PY) -m benchmarks --quick score losses

# the docs site (mkdocs-material + mkdocstrings, --strict) into build/site/
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site

clean:
	rm -rf $(VENV) runs .pytest_cache
