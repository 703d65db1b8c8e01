# tgvm: the two commands a user needs are `make demo` and `make check`.
# Everything goes through Meson; this file only names the common jobs.
# Meson and ninja are quiet unless they fail; then all they said goes to stderr.
BUILD       ?= build
CHECK_BUILD ?= build-check
MESON       ?= meson
TGVM_ARGS   ?=
DIST        ?= bookworm

.PHONY: all setup build demo check check-fresh test format format-fix fuzz bench clean guest install

all: build

setup:
	@scripts/setup.sh

$(BUILD)/build.ninja:
	@out=$$($(MESON) setup $(BUILD) --buildtype=debugoptimized 2>&1) || { echo "$$out" >&2; exit 1; }

build: $(BUILD)/build.ninja
	@out=$$(ninja -C $(BUILD) 2>&1) || { echo "$$out" >&2; exit 1; }

guest: setup

demo: setup build
	@scripts/demo.sh $(BUILD)

$(CHECK_BUILD)/build.ninja:
	@out=$$($(MESON) setup $(CHECK_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
		-Db_lundef=false 2>&1) || { echo "$$out" >&2; exit 1; }

check: setup $(CHECK_BUILD)/build.ninja
	@out=$$($(MESON) setup --reconfigure $(CHECK_BUILD) 2>&1) || { echo "$$out" >&2; exit 1; }
	@out=$$(ninja -C $(CHECK_BUILD) 2>&1) || { echo "$$out" >&2; exit 1; }
	@scripts/run-tests.sh $(CHECK_BUILD)

# On a minimal Debian root made for the purpose (root; DIST=bookworm|trixie):
# setup from nothing, build, a few verbs, the guest, the unit tests.
check-fresh:
	@scripts/check-fresh.sh $(DIST)

format:
	@scripts/check-format.sh

format-fix:
	@scripts/check-format.sh --fix

fuzz: setup
	@scripts/fuzz.sh

bench: setup build
	@bench/run.sh $(BUILD)

# make install [PREFIX=/usr/local] [DESTDIR=...]: the binary, man pages, bash
# completion, guest programs and examples (meson install of $(BUILD)).
PREFIX ?= /usr/local
install: $(BUILD)/build.ninja
	@$(MESON) configure $(BUILD) -Dprefix=$(PREFIX) >/dev/null
	@ninja -C $(BUILD) >/dev/null
	@$(MESON) install -C $(BUILD) --no-rebuild $(if $(DESTDIR),--destdir $(DESTDIR))

clean:
	rm -rf $(BUILD) $(CHECK_BUILD)
