# kuomian — every target creates and uses the local virtualenv .venv,
# so a fresh clone needs nothing but python3 (3.11+) and network access to PyPI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PEOPLE ?= 20000
PY     ?= 3.12
OUT    ?= output/demo

.PHONY: setup demo test eval bench lint report-check wheelhouse clean catalogues

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The whole pipeline on a generated Anning (PEOPLE=20000 by default)
demo: setup
	$(BIN)/kuomian demo --people $(PEOPLE) --out $(OUT) --force

## The test suite (what CI runs)
test: setup
	$(BIN)/python -m pytest

## Matching and registry accuracy against the generator's ground truth, on tidy and on real-shaped worlds
## (EVAL_ARGS="--shapes real --seeds 1 --people 5000": real-shaped only, small)
eval: setup
	$(BIN)/python -m bench.evaluate $(EVAL_ARGS)

## Speed and memory at city scale (set BENCH_ARGS="--big" for 8.5M, "--splink" for Splink)
bench: setup
	$(BIN)/python -m bench.speed $(BENCH_ARGS)

## Render the demo's report.html in headless Chromium (Debian package) and check it is not blank
report-check: demo
	command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk)
	$(BIN)/python -m bench.render_check $(OUT)/registry/report.html --png $(OUT)/report.png

## Compile the Chinese message catalogues (pipeline/locale/zh_CN/LC_MESSAGES/*.po -> .mo; GNU gettext's msgfmt)
catalogues:
	for po in pipeline/locale/*/LC_MESSAGES/*.po; do msgfmt --check -o "$${po%.po}.mo" "$$po" || exit 1; done

## Offline install: dist/wheelhouse/ with the project's wheel and every dependency's wheels for
## win_amd64, manylinux x86_64 and aarch64 (CPython $(PY); PY=3.11 to choose), install.bat, install.sh
wheelhouse: setup
	$(BIN)/python -m bench.wheelhouse --python $(PY)

lint: setup
	$(BIN)/ruff check pipeline schemas tests bench
	$(BIN)/ruff format --check pipeline schemas tests bench
	$(BIN)/python -m bench.typecheck

clean:
	rm -rf $(VENV) output dist .pytest_cache .ruff_cache .hypothesis
