# Two commands set everything up on a fresh machine (Python 3.10+ and make):
#   make demo   — venv + requirements + offline assets, then the main job on the embedded defaults
#   make test   — venv + requirements, then the fast test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements.stamp
DEMO_OUT ?= out/demo
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: setup assets demo test test-slow analyze report bench mech-set lint clean-demo

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

setup: $(STAMP)

assets: setup
	$(BIN)/python -m subliminal.assets fetch mnist smollm2-135m-instruct

demo: assets
	$(BIN)/python topic_a.py --quick --out $(DEMO_OUT)/plots_a
	$(BIN)/python topic_b_part1.py --quick --out $(DEMO_OUT)/plots_b
	@echo
	@echo "Demo results (quick configurations; the full-size results are committed in plots_a/ and plots_b/):"
	@ls -1 $(DEMO_OUT)/plots_a $(DEMO_OUT)/plots_b | sed 's/^/  /'

test: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: setup
	$(BIN)/python -m pytest -m slow -q

analyze: setup
	$(BIN)/python -m subliminal.topic_a.analysis

report: setup
	$(BIN)/python -m subliminal.reporting

bench: setup
	$(BIN)/python bench/bench_topic_a.py
	$(BIN)/python bench/bench_topic_b.py
	$(BIN)/python bench/bench_precision.py
	$(BIN)/python bench/bench_topic_b_transfer.py

mech-set: setup
	$(BIN)/python bench/bench_mech_set.py

lint: setup
	$(BIN)/ruff check .

clean-demo:
	rm -rf $(DEMO_OUT)
