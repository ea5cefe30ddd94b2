# Lanes: a thin index of one-line targets; the work lives in scripts/.
.PHONY: demo test bench chaos lint fmt up down

WORKERS ?= 2

demo:   ## install what is missing, build, run every scenario end to end on an embedded stack
	scripts/demo

test:   ## cargo fmt --check, clippy -D warnings, every test against a real redis-server
	scripts/test

bench:  ## release build, then the benchmark suite (table + target/bench/*.json)
	scripts/bench

chaos:  ## release build, then the reliability campaign: kills, a zombie, Redis pauses; wrk load
	scripts/chaos

up:     ## a local stack in the background: redis, fakes, broker, WORKERS workers per role
	scripts/up $(WORKERS)

down:   ## stop exactly what `make up` started
	scripts/down

lint:   ## formatting and lints only
	cargo fmt --all --check && cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:    ## format the workspace
	cargo fmt --all
