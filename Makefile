# The two commands of the README. Both install what they need first (idempotent, fast when done).
PY ?= python3

.PHONY: install demo test test-fast bench

install:
	$(PY) -m pip install -q -e ".[test]"

demo: install
	$(PY) -m launch.cli demo

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) bench/step_time.py
