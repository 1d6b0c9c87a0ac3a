# The README's commands. `make help` lists them.
GO ?= go

.PHONY: help demo test bench build generate vet docker

help:
	@echo "make demo      run the app with simulated Bitrix24 and iSpring Learn (prints the addresses)"
	@echo "make test      run the whole test suite (needs PostgreSQL; see README)"
	@echo "make bench     run the benchmarks reported in docs/benchmarks.md"
	@echo "make build     build bin/b24learn"
	@echo "make generate  regenerate templ components"

demo:
	$(GO) run ./cmd/b24learn demo

# -p 2 matches a two-core machine; every package gets its own databases, so
# packages may run in parallel. -race: the workers, the limiters and the
# simulators share state across goroutines.
test:
	$(GO) test -race -count=1 -p 2 -timeout 40m ./...

# One pass of every benchmark (the 100,000-employee initial sync alone takes
# about five minutes on two cores); docs/benchmarks.md has the figures.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/b24learn ./cmd/b24learn

generate:
	$(GO) tool templ generate

vet:
	$(GO) vet ./...

docker:
	docker build -t b24learn .
