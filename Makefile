# The two commands of the README. Both install what they need first (idempotent, fast when done).
PY ?= python3

.PHONY: install demo test test-fast bench

install:
	@# the SWE sandbox needs bubblewrap; installed here when missing and we are root (CI, fresh machines)
	@command -v bwrap >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq bubblewrap; \
		else echo "warning: bubblewrap (bwrap) is missing and cannot be installed here: the SWE sandbox tests will fail"; fi; }
	$(PY) -m pip install -q -e ".[test]"

demo: install
	$(PY) -m launch.cli demo

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) bench/step_time.py
