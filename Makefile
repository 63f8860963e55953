# Equitas build, run and test entry points. `make run` and `make test` are
# the two commands a new user needs (see README.md).
GO       ?= go
BIN      ?= bin/equitas
DATA     ?= ./data
ADDR     ?= 127.0.0.1:8080
PATIENTS ?= 200
SEED     ?= 1
ECQM     ?= ../shared/ecqm
BENCHTIME ?= 1x
FUZZTIME ?= 60s

.PHONY: build run seed test vet bench fuzz clean ui

UI_DIR := measures/dashboard/web
UI_LIB := $(UI_DIR)/vendor/chart.umd.min.js

build: ui
	$(GO) build -o $(BIN) ./cmd/equitas

# The dashboard's chart library comes from npm (pinned by its lockfile) and
# is embedded in the binary; nothing is fetched from a CDN at run time.
ui: $(UI_LIB)

$(UI_LIB): $(UI_DIR)/package.json $(UI_DIR)/package-lock.json
	cd $(UI_DIR) && npm ci --no-audit --no-fund --silent
	cp $(UI_DIR)/node_modules/chart.js/dist/chart.umd.min.js $@

# Start the server on the embedded badger store; the first start loads a
# small synthetic population, computes its attribution lists and loads the
# official measures (when ../shared/ecqm is there) so there is something to
# query and chart.
run: build seed
	$(BIN) serve --addr $(ADDR) --data $(DATA)

seed: build
	@if [ ! -e $(DATA)/.seeded ]; then \
		echo "loading a synthetic population of $(PATIENTS) patients into $(DATA)"; \
		rm -rf out/seed && $(BIN) synth --patients $(PATIENTS) --seed $(SEED) --out out/seed && \
		$(BIN) import --data $(DATA) out/seed && \
		$(BIN) attribution run --data $(DATA) --method hybrid --as-of 2025-12-31 && \
		if [ -d $(ECQM) ]; then $(BIN) measure load --content $(ECQM) --data $(DATA); fi && \
		touch $(DATA)/.seeded; \
	fi

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

test: vet ui
	$(GO) test -count=1 -timeout 20m ./...

# Benchmarks: every Benchmark* once per package at the default benchtime
# unless BENCHTIME is given (e.g. make bench BENCHTIME=3s).
bench: ui
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 60m ./...

# Fuzz every Fuzz* target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin out
