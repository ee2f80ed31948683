# Two commands do all the set-up: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install bench clean docs

run: $(STAMP)
	$(BIN)/tradectl run

test: $(STAMP)
	$(BIN)/python -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,reference]'
	touch $(STAMP)

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info

# Regenerate .env.example and the settings table in docs/configuration.md from the settings models.
docs: $(STAMP)
	$(BIN)/tradectl config docs --format env > .env.example
	$(BIN)/python -c "import re,pathlib,subprocess; p=pathlib.Path('docs/configuration.md'); t=p.read_text(); g=subprocess.check_output(['$(BIN)/tradectl','config','docs','--format','md'],text=True); s,e='<!-- settings:begin -->','<!-- settings:end -->'; p.write_text(t[:t.index(s)+len(s)]+'\n'+g+t[t.index(e):])"
