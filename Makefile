# The README's commands. Each sets everything up first (tools/setup_env.sh is idempotent).
PRESET ?= cpu
ARGS ?=
VENV := .venv/bin
# glibc keeps freed memory instead of handing it back to the kernel after every batch: CPU training runs
# about 25 % faster (measured with benchmarks/train_throughput.py on this project's 2-core machine)
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 4294967296
export MALLOC_TOP_PAD_ ?= 268435456

.PHONY: setup lock test test-quick reproduce export readme notebooks clean-nbs docs docs-check lab

setup:
	@bash tools/setup_env.sh

# refresh requirements.lock: a fresh venv from settings.ini's ranges, frozen (then `make setup` installs it)
lock:
	@bash tools/setup_env.sh --lock

# the whole test suite: nbdev sync check, every notebook (slow/gpu cells skipped), library tests; one summary line
test: setup
	$(VENV)/python -m pytest tests -q -p no:cacheprovider --durations=15

# the loop while working: every test but the wheel, the browser, Ray, JupyterLab and the batch tests (`make test` runs all)
test-quick: setup
	$(VENV)/python -m pytest tests -q -p no:cacheprovider --durations=5 -m "not heavy"

# regenerate every table and figure (PRESET=smoke for the seconds-long run); nbdev_clean then strips papermill's
# metadata from the notebooks that --into-nbs wrote over nbs/paper, so they commit clean
reproduce: setup
	$(VENV)/deepocc-reproduce --preset $(PRESET) $(ARGS) && $(VENV)/nbdev_clean

# JupyterLab on 127.0.0.1 in the project's environment, opened on nbs/ (start with nbs/paper/table1_semantic.ipynb)
LAB_ARGS ?=
lab: setup
	$(VENV)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=nbs $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# developer helpers
export: setup
	$(VENV)/nbdev_clean && $(VENV)/nbdev_export

readme: setup
	$(VENV)/python tools/make_readme.py

# execute the library notebooks in place (they are committed with their outputs), then clean them
notebooks: setup
	$(VENV)/python tools/run_notebooks.py $(ARGS) && $(VENV)/nbdev_clean

# the documentation site from the notebooks into _site/ (mkdocs + Material + mkdocs-jupyter; no notebook is executed)
docs: setup
	$(VENV)/python tools/build_docs.py

# build the site, then check every page in headless Chromium (tests/test_docs.py; screenshots in _site_screenshots/)
docs-check: docs
	$(VENV)/python -m pytest tests/test_docs.py -q -p no:cacheprovider
