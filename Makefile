# mod_wsgi in Rust: build, test and run on Debian 12 (as root for installs).

SHELL := /bin/bash
# Where cargo builds: CARGO_TARGET_DIR when set, as cargo itself does.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
MODULE := $(TARGET_DIR)/release/libmod_wsgi.so
REFERENCE := /usr/lib/apache2/modules/mod_wsgi.so
DEBIAN_PACKAGES := apache2 apache2-dev python3-dev python3-venv python3-flask libclang-dev libapache2-mod-wsgi-py3 wrk curl iproute2 openssl dpkg-dev
RUN_PORT ?= 8000
RUN_DIR ?= /tmp/mod_wsgi-rs-run
EXPRESS := $(TARGET_DIR)/release/mod_wsgi-express
# `make deb` writes libapache2-mod-wsgi-rs_<version>_<arch>.deb here.
DEB_DIR := $(TARGET_DIR)/debian
export PYO3_PYTHON := /usr/bin/python3
export CARGO_TERM_COLOR := never

.PHONY: all deps build run test test-reference bench install deb clean

all: build

# Installs only the Debian packages that are missing.
deps:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }

build: deps
	cargo build --release

$(MODULE): build

# Serves conf-examples/hello.wsgi on http://127.0.0.1:$(RUN_PORT) with mod_wsgi-express, in
# the foreground; Ctrl-C stops it. The script is copied where Apache's user can read it.
run: build
	@install -D -m 644 conf-examples/hello.wsgi "$(RUN_DIR)-app/hello.wsgi"
	@chmod 755 "$(RUN_DIR)-app"
	$(EXPRESS) start-server "$(RUN_DIR)-app/hello.wsgi" --port $(RUN_PORT) --server-root "$(RUN_DIR)" --log-to-terminal

# Unit tests, then the integration tests against a real httpd with our module.
test: build
	cargo test --release

# The integration tests against Debian's C mod_wsgi: confirms expectations.
test-reference: deps
	MOD_WSGI_SO=$(REFERENCE) cargo test --release --tests

bench: build
	bench/compare

install: build
	install -m 644 $(MODULE) "$$(apxs -q LIBEXECDIR)/mod_wsgi_rs.so"
	@echo "LoadModule wsgi_module $$(apxs -q LIBEXECDIR)/mod_wsgi_rs.so"

# A Debian package of the module built by `build` (packaging/debian/): installs as the
# Apache module wsgi_rs, enabled by its postinst as Debian's module packages do.
deb: build
	@packaging/debian/build-deb $(MODULE) $(DEB_DIR)

clean:
	cargo clean
