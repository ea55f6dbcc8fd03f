# The two quick-start commands: `make tour` and `make test`. Each creates .venv
# with python3 on first use, installs minivgg into it, then runs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of PyTorch used as a test oracle; a plain `torch` would pull a CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: tour test test-fast bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --disable-pip-version-check -q "$(TORCH)"
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[test,torch,plot,image,keras,bench,onnx,notebook]"
	touch $@

tour: $(VENV)/.installed
	$(BIN)/minivgg tour

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest

test-fast: $(VENV)/.test-installed
	$(BIN)/python -m pytest -m "not slow"

bench: $(VENV)/.test-installed
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/minivgg bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
