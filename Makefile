# tgvm: the two commands a user needs are `make demo` and `make check`.
# Everything goes through Meson; this file only names the common jobs.
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
	@$(MESON) setup $(BUILD) --buildtype=debugoptimized >/dev/null

build: $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null

guest: setup

demo: setup build
	@scripts/demo.sh $(BUILD)

$(CHECK_BUILD)/build.ninja:
	@$(MESON) setup $(CHECK_BUILD) --buildtype=debug -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null

check: setup $(CHECK_BUILD)/build.ninja
	@$(MESON) setup --reconfigure $(CHECK_BUILD) >/dev/null
	@ninja -C $(CHECK_BUILD) >/dev/null
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
