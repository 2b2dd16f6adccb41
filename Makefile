# Quorum: `make run` starts the server, `make test` runs every check. Python 3.11 and make suffice.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Daphne: websocket lifetime below any group expiry (docs/deploy.md), server pings every 20 s,
# 30 s for a handshake during a reconnect storm; the listen backlog (Twisted's default is 50) is
# set on the endpoint (docs/deploy.md, "Reconnect storms").
DAPHNE_OPTS ?= --websocket_timeout 14400 --ping-interval 20 --ping-timeout 30 --websocket-max-message-size 262144 --websocket_connect_timeout 30
DAPHNE_BACKLOG ?= 2048

.PHONY: run test fmt migrate clean bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

migrate: $(VENV)/.installed
	$(PY) manage.py migrate --noinput

run: migrate
	@echo ""
	@echo "  Quorum is running at http://$(HOST):$(PORT)/   (Ctrl+C to stop)"
	@echo ""
	$(PY) -m config.serve -e tcp:port=$(PORT):interface=$(HOST):backlog=$(DAPHNE_BACKLOG) $(DAPHNE_OPTS) config.asgi:application

test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The load benchmark (bench/README.md): needs PostgreSQL and Redis on 127.0.0.1; about 35 minutes.
# e.g. make bench BENCH_ARGS="--only main,idle --runs 1"
bench: $(VENV)/.installed-test
	$(PY) bench/run.py $(BENCH_ARGS)

fmt: $(VENV)/.installed-test
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
