# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install check lock bench clean docs

run: $(STAMP)
	$(BIN)/tradectl run

test: $(STAMP)
	$(BIN)/python -m pytest

install: $(STAMP)

# Exact versions with hashes from requirements-dev.lock (the service's requirements.lock plus the test,
# reference and checker tools, resolved together), then the project itself (no dependency resolution).
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Linters, types, import contracts and dead code: the same environment as the tests (docs/developing.md).
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture

# Re-resolve the dependencies after changing pyproject.toml (needs the package index).
lock: $(STAMP)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --extra reference --extra dev --extra ccxt --extra research --generate-hashes \
		--python-version 3.11 --quiet -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml --constraint requirements-dev.lock --generate-hashes \
		--python-version 3.11 --quiet -o requirements.lock

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info

# Regenerate .env.example and the settings table in docs/configuration.md from the settings models.
docs: $(STAMP)
	$(BIN)/tradectl config docs --format env > .env.example
	$(BIN)/python -c "import re,pathlib,subprocess; p=pathlib.Path('docs/configuration.md'); t=p.read_text(); g=subprocess.check_output(['$(BIN)/tradectl','config','docs','--format','md'],text=True); s,e='<!-- settings:begin -->','<!-- settings:end -->'; p.write_text(t[:t.index(s)+len(s)]+'\n'+g+t[t.index(e):])"
