# Set up a virtualenv with the pinned requirements, then run the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test clean demo

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	touch $@

test: setup
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) .pytest_cache

# Train a small model for a few CPU minutes on demo/data, vocode held-out clips into demo_output/.
# MODEL=flowavenet trains FloWaveNet instead of WaveGlow; CHECKPOINT=path vocodes the clips with
# that checkpoint instead of training; DEMO_ITERATIONS=N shortens training.
MODEL ?= waveglow
demo: setup
	$(PY) scripts/demo.py --model $(MODEL) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) $(if $(DEMO_ITERATIONS),--iterations $(DEMO_ITERATIONS))
