# Two commands do everything: `make run` and `make test`. Everything else here is what they stand on.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= data/sample
HOST   ?= 127.0.0.1
PORT   ?= 8000
PG_URL ?= postgresql://postgres@127.0.0.1:5432/onemap_test

.PHONY: run test setup npm sample lint system-deps postgis serve clean bench-peers

run: setup npm sample  ## set up and serve the sample county with the embedded store
	$(BIN)/onemap serve --database $(DATA)/county.gpkg --host $(HOST) --port $(PORT)

test: setup system-deps npm sample postgis lint  ## set up, provision PostGIS, run the whole suite on both stores
	ONEMAP_TEST_POSTGIS=$$(cat $(DATA)/.postgis-url) ONEMAP_SAMPLE_DIR=$(DATA) $(BIN)/pytest -q

setup: $(VENV)/.installed

npm: node_modules/.installed  ## browser assets and validators from the npm registry (package-lock.json), never a CDN

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

sample: setup  ## generate the sample county if it is missing (deterministic)
	$(BIN)/onemap sample --out $(DATA) --if-missing
	$(BIN)/onemap db upgrade --database $(DATA)/county.gpkg

system-deps:  ## Debian packages the end-to-end tests use (PostGIS, GDAL, QGIS, Chromium, Mosquitto)
	bash scripts/system-deps.sh

postgis: setup system-deps  ## a PostGIS database of our own, migrated and loaded with the sample county
	bash scripts/provision-postgis.sh "$(PG_URL)" > $(DATA)/.postgis-url
	$(BIN)/onemap db upgrade --database $$(cat $(DATA)/.postgis-url)
	$(BIN)/onemap sample --out $(DATA) --load $$(cat $(DATA)/.postgis-url) --if-missing

bench-peers: bench/.venv-peers/.installed  ## the benchmarks' peers (tipg, pygeoapi) in their own venv

bench/.venv-peers/.installed: bench/peers.txt
	test -x bench/.venv-peers/bin/python || $(PYTHON) -m venv bench/.venv-peers
	bench/.venv-peers/bin/pip install -q -r bench/peers.txt
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
