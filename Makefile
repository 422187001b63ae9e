# Two commands do everything on a fresh machine (Debian/Ubuntu with python3):
#   make demo   set up a virtualenv with the device runtime and run the daemon on its built-in clip
#   make test   install the system packages it needs (apt, as root; else it names them and stops), set up
#               the full dev environment and run the linter and the test suite
VENV ?= .venv
PYTHON ?= python3
PIP := $(VENV)/bin/pip

.PHONY: demo test setup-device setup-dev system-deps

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.device: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[runtime,plots]'  # [device] minus PyAudio: no compiler needed for the demo
	touch $@

$(VENV)/.dev: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[dev]'
	touch $@ $(VENV)/.device

setup-device: $(VENV)/.device
setup-dev: $(VENV)/.dev

demo: setup-device
	$(VENV)/bin/edgeemo run --demo

system-deps:
	tools/system-deps.sh

test: system-deps setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -q
