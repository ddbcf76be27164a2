# The README's commands. Each sets everything up first (tools/setup_env.sh is idempotent).
PRESET ?= cpu
ARGS ?=
VENV := .venv/bin

.PHONY: setup test reproduce export readme clean-nbs

setup:
	@bash tools/setup_env.sh

# the whole test suite: nbdev sync check, every notebook (slow/gpu cells skipped), library tests; one summary line
test: setup
	$(VENV)/python -m pytest tests -q -p no:cacheprovider

# regenerate every table and figure (PRESET=smoke for the seconds-long run)
reproduce: setup
	$(VENV)/deepocc-reproduce --preset $(PRESET) $(ARGS)

# developer helpers
export: setup
	$(VENV)/nbdev_clean && $(VENV)/nbdev_export

readme: setup
	$(VENV)/python tools/make_readme.py
