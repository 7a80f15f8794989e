# Set up a virtualenv with this project installed editable (every extra, torch pinned), then lint and test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup lint test wheel-check clean demo

setup: $(VENV)/.installed

# Re-runs when the requirements or the package's metadata (dependencies, console scripts) change.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	touch $@

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q tests

# Build the wheel, install it alone into a clean virtualenv, run its console scripts from outside the repository.
wheel-check:
	PYTHON=$(PYTHON) bash .ci/wheel_check.sh

clean:
	rm -rf $(VENV) .pytest_cache

# Train a small model for a few CPU minutes on demo/data, vocode held-out clips into demo_output/.
# MODEL=flowavenet trains FloWaveNet instead of WaveGlow; CHECKPOINT=path vocodes the clips with
# that checkpoint instead of training; DEMO_ITERATIONS=N shortens training. Where the repository ships a
# demo voice trained on a GPU (demo/waveglow_voice.pt), the WaveGlow demo vocodes with it; TRAIN=1 trains instead.
MODEL ?= waveglow
demo: setup
	$(PY) scripts/demo.py --model $(MODEL) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) $(if $(DEMO_ITERATIONS),--iterations $(DEMO_ITERATIONS)) $(if $(TRAIN),--train)
