# moor: developer entry points. `make run` to try it, `make test` before pushing.
#
# Variables (make VAR=value):
#   RACE=1         make test builds with the race detector (slower; off by default so
#                  the suite fits its timeout on 2 cores and timing-sensitive tests hold)
#   FUZZTIME=20000x per fuzz target in make test: inputs, or a time such as 10s (make test FUZZTIME=0 skips fuzzing)
#   TESTFLAGS=     extra go test flags, e.g. TESTFLAGS='-run TestX -v'
#   TESTTIMEOUT=   go test -timeout, per test binary (default 8m, 20m with RACE=1)
#   MOOR_TEST_DEADLINE (environment) how long one integration test may run
#                  before it is reported stuck with every goroutine's stack
#                  (default 3m, 6m with -race; 0 turns it off, e.g. in a debugger)
#   PGDIR=.moor/pg where make run keeps its PostgreSQL cluster
#   YES=1          make distclean removes make run's Docker objects without asking

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
RACE ?=
FUZZTIME ?= 20000x
TESTFLAGS ?=
# A stuck test is caught by its own deadline (internal/testenv Deadline: every
# test that uses PostgreSQL, Docker or a port), which prints its name and stacks
# after MOOR_TEST_DEADLINE. -timeout is the backstop for the other tests: the
# slowest binary (e2e) takes about 2 minutes here, so 8m fails a stuck unit
# test well before the whole run would, with room for a loaded machine.
TESTTIMEOUT ?= $(if $(RACE),20m,8m)
PGDIR ?= .moor/pg

.PHONY: build run testimage test test-race bench clean distclean pg-start pg-stop

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/moor ./cmd/moor

# Without MOOR_DATABASE_URL, a local cluster is started (or reused) in $(PGDIR); it
# keeps running after moor stops (make pg-stop stops it). The test image is built
# too: the quick start deploys it, and no registry may be reachable.
run: build testimage
	@if [ -z "$${MOOR_DATABASE_URL:-}" ]; then \
		MOOR_DATABASE_URL=$$(scripts/pg.sh start '$(PGDIR)'); \
		export MOOR_DATABASE_URL; \
		echo "moor: using the local PostgreSQL in $(PGDIR) (stop it with: make pg-stop)"; \
	fi; \
	bin/moor migrate; \
	addr=$${MOOR_HTTP_ADDR:-127.0.0.1:8080}; \
	case $$addr in \
		:*) addr=127.0.0.1$$addr ;; \
		0.0.0.0:*) addr=127.0.0.1:$${addr#0.0.0.0:} ;; \
	esac; \
	echo; \
	echo "moor: serving on http://$$addr/ (dashboard and API); containers at http://NAME.moor.localhost:$${addr##*:}/"; \
	echo "moor: in another terminal, make the first admin's API key and save it for the CLI:"; \
	echo "  MOOR_DATABASE_URL='$$MOOR_DATABASE_URL' bin/moor apikey create --name me --role admin | bin/moor login --url http://$$addr"; \
	echo "  bin/moor deploy testapp blog --wait && bin/moor ls      (docs/cli.md)"; \
	echo "moor: and a user for the dashboard (password on stdin):"; \
	echo "  echo 'a long passphrase' | MOOR_DATABASE_URL='$$MOOR_DATABASE_URL' bin/moor user add --username me --role admin"; \
	echo; \
	exec bin/moor serve

# Test images are built from testdata sources (no registry is reachable).
testimage:
	$(GO) run ./testdata/images/build

# One throwaway cluster (fsync off) serves every package's tests through
# MOOR_TEST_DATABASE_URL, unless that is already set; it is stopped and removed
# however the run ends.
test: testimage
	@pgdir=''; \
	if [ -z "$${MOOR_TEST_DATABASE_URL:-}" ]; then \
		pgdir=$$(mktemp -d "$${TMPDIR:-/tmp}/moor-pgtest.XXXXXX"); \
		trap 'scripts/pg.sh stop "$$pgdir" >/dev/null 2>&1 || true; rm -rf "$$pgdir"' EXIT; \
		trap 'exit 130' INT TERM; \
		scripts/pg.sh start "$$pgdir" --fast >/dev/null; \
		MOOR_TEST_DATABASE_URL=$$(scripts/pg.sh url "$$pgdir" postgres); \
		export MOOR_TEST_DATABASE_URL; \
	fi; \
	echo "+ MOOR_TEST_DATABASE_URL=$$MOOR_TEST_DATABASE_URL"; \
	echo "+ $(GO) vet ./..."; \
	$(GO) vet ./...; \
	for goos in darwin windows; do \
		echo "+ GOOS=$$goos $(GO) build ./..."; \
		GOOS=$$goos $(GO) build ./...; \
	done; \
	echo "+ $(GO) test -count=1 -timeout $(TESTTIMEOUT) $(if $(RACE),-race )$(TESTFLAGS) ./..."; \
	$(GO) test -count=1 -timeout $(TESTTIMEOUT) $(if $(RACE),-race )$(TESTFLAGS) ./...; \
	if [ '$(FUZZTIME)' != 0 ]; then scripts/fuzz.sh '$(FUZZTIME)'; fi

test-race:
	$(MAKE) test RACE=1

bench:
	bash bench/run.sh

pg-start:
	@scripts/pg.sh start '$(PGDIR)'

pg-stop:
	@scripts/pg.sh stop '$(PGDIR)'

clean:
	rm -rf bin

# First removes what make run's moor created on Docker (bin/moor uninstall:
# its containers, volumes and network, listed, then a confirmation on a
# terminal; YES=1 confirms without one), then stops and deletes make run's
# database. When the uninstall is refused, declined or does not finish, the
# database stays: it is what says which Docker objects are this
# installation's. Stop make run's moor first (uninstall refuses while it
# runs). With MOOR_DATABASE_URL set, that database's installation is
# uninstalled (the database itself is not deleted). Without a database, the
# installations found on Docker are listed with the command that removes
# what each left (bin/moor uninstall --owner ID). The secret key file
# (.moor/secret.key unless configured otherwise) stays: it may seal
# credentials in another database.
YES ?=
distclean: build
	@datadir=$$(cat '$(PGDIR)/datadir' 2>/dev/null || echo '$(PGDIR)'); \
	if [ -n "$${MOOR_DATABASE_URL:-}" ]; then \
		url=$$MOOR_DATABASE_URL; \
	elif [ -f "$$datadir/data/PG_VERSION" ]; then \
		url=$$(scripts/pg.sh start '$(PGDIR)'); \
	else \
		url=''; \
	fi; \
	if [ -n "$$url" ]; then \
		if ! MOOR_DATABASE_URL=$$url bin/moor uninstall $(if $(YES),--yes); then \
			echo "moor: make distclean stopped: the database in $(PGDIR) is kept (make distclean YES=1 confirms without a terminal;"; \
			echo "moor: to delete it anyway, leaving the Docker objects: make pg-stop && rm -rf $(PGDIR))"; \
			exit 1; \
		fi; \
	else \
		echo "moor: no database in $(PGDIR): nothing tells which Docker objects were make run's."; \
		MOOR_DATABASE_URL= bin/moor uninstall 2>&1 | sed 's/^moor: //' || true; \
	fi
	scripts/pg.sh stop '$(PGDIR)'
	if [ -f '$(PGDIR)/datadir' ]; then rm -rf "$$(cat '$(PGDIR)/datadir')"; fi
	rm -rf '$(PGDIR)' bin
