# Two commands on a fresh machine: `make serve` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip install --quiet -c constraints.txt

.PHONY: setup serve test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(PIP) -e '.[test]'
	# only its CLIP vocabulary file is used (to rebuild diffusion/assets/clip_tokenizer); its own
	# dependencies would pull in torchvision, which the CPU torch cannot load
	$(PIP) --no-deps open_clip_torch
	touch $(STAMP)

DEMO_MODELS := models/checkpoints/sdflow-tiny-sd15.safetensors

# tiny random models of every family, so the demo runs on a fresh machine without downloads
$(DEMO_MODELS): | setup
	$(BIN)/sdflow demo-models models/checkpoints

# Until the HTTP server lands, `serve` generates an image from the txt2img workflow with the demo model.
serve: setup $(DEMO_MODELS)
	$(BIN)/sdflow run workflows/txt2img.json --input workflows/inputs --out output

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/engine_overhead.py

clean:
	rm -rf $(VENV) output temp
