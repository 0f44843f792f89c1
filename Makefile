# Two commands on a fresh machine: `make serve` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip install --quiet -c constraints.txt
# the editor's npm packages (the canvas library); the stamp lives inside node_modules, so a
# deleted node_modules or a newer lockfile runs `npm ci` again
WEB_STAMP := web/node_modules/.sdflow-installed

.PHONY: setup web serve test bench clean

setup: $(STAMP)

web: $(WEB_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	touch $(WEB_STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[test]'
	# only its CLIP vocabulary file is used (to rebuild diffusion/assets/clip_tokenizer); its own
	# dependencies would pull in torchvision, which the CPU torch cannot load
	$(PIP) --no-deps open_clip_torch
	touch $(STAMP)

# The server and editor on 127.0.0.1:8188; with no checkpoint installed it writes the tiny demo models first.
serve: setup web
	$(BIN)/sdflow serve

test: setup web
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/engine_overhead.py

clean:
	rm -rf $(VENV) temp
