# The scaling lab's entry points. `make help` lists them.
# Set-up is idempotent: each target installs only what is missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= full
# Overrides for `make report`, e.g. make report SET="fault_seconds=6 wrk_seconds=5".
SET ?=
# Options for `make up`, passed to `python -m infra up`, e.g. make up UP_ARGS="--web 3".
UP_ARGS ?=
# Debian packages the stack, the browser tests and the report need (PostgreSQL is installed
# by `python -m infra up --db postgres` when it is first asked for).
DEBIAN_PACKAGES := redis-server haproxy chromium chromium-driver wrk poppler-utils pen shellcheck

# Let Python keep compiled modules in __pycache__/ (ignored by git). Where the environment
# turns that off (this machine's does), every pytest process rewrites the assertions of some
# 300 plugin modules again (about 3 s each time) and every process recompiles the project.
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help
.PHONY: help setup system venv test test-unit up down status report jupyter clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: system venv ## install what is missing: Debian packages and .venv/

system: ## install the Debian packages the stack needs (with sudo when not root)
	@bash infra/install_system_packages.sh $(DEBIAN_PACKAGES)

venv: $(VENV)/.installed ## create .venv/ with the pinned requirements

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned Python packages into $(VENV)/ ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# the repository root on the venv's path: notebooks and tools import infra and lab from anywhere
	@$(PY) -c "import site; open(site.getsitepackages()[0] + '/scaling-lab.pth', 'w').write('$(CURDIR)\n')"
	@touch $@

test: setup ## run the whole test suite (unit, stack, integration)
	$(PY) -m pytest

test-unit: venv ## run only the unit tests (no processes started)
	$(PY) -m pytest tests/unit

up: setup ## start the site at http://127.0.0.1:8000
	$(PY) -m infra up $(UP_ARGS)

down: venv ## stop everything `make up` started
	$(PY) -m infra down

status: venv ## show every process of the stack, its port, pid and health
	@$(PY) -m infra status || test $$? -eq 3  # 3: nothing is running, which is no error here

report: setup ## run every notebook and write writeup/report.html and .pdf (PROFILE=quick for a short run)
	$(PY) -m lab report --profile $(PROFILE) $(foreach s,$(SET),--set $(s))

jupyter: venv ## explore the notebooks interactively in JupyterLab (installed on first use)
	@$(VENV)/bin/jupyter-lab --version >/dev/null 2>&1 || $(PY) -m pip install --quiet jupyterlab
	$(VENV)/bin/jupyter-lab --ip 127.0.0.1 --no-browser notebooks/

clean: down ## stop the stack and remove generated local state (not data/runs/)
	rm -rf data/state data/*.sqlite3*
