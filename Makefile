# Chartreuse — build, test and benchmark entry points.
# `make` builds bin/chartreuse; `make check` is what CI runs.

VERSION   := $(shell cat VERSION)
PKGS      := libfyaml yaml-0.1 libcurl libpq
# libcurl and libpq are loaded when first called (src/dynlib.h): only their headers take part
# in the build. The YAML libraries are linked statically: the post-renderer, which Helm runs
# on every render, then starts with two shared objects fewer to map and relocate.
LINK_PKGS := libfyaml yaml-0.1
BUILD     ?= build/release
BIN       ?= bin/chartreuse
CC        ?= cc
OPTFLAGS  ?= -O2 -g
SANFLAGS  ?=
PYTHON    ?= /usr/bin/python3
PYTEST    ?= $(PYTHON) -m pytest
TESTS     ?= tests   # make test TESTS=tests/test_pods.py runs one file

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := -Wl,-Bstatic $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null) -Wl,-Bdynamic

CFLAGS_ALL = -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
             -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 \
             -Isrc -I$(BUILD)/gen -DCHARTREUSE_VERSION='"$(VERSION)"' \
             $(PKG_CFLAGS) $(OPTFLAGS) $(SANFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(SANFLAGS) $(LDFLAGS) $(PKG_LIBS) -lpthread

LIB_SRCS  := $(filter-out src/main.c,$(wildcard src/*.c src/cmd/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/templates.o
MAIN_OBJ  := $(BUILD)/src/main.o
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
UNIT_BIN  := $(BUILD)/unit-tests
TEMPLATES := $(sort $(wildcard templates/*.yaml))

.PHONY: all test test-asan check asan valgrind e2e bench bench-post-render bench-migrate bench-pods install demo \
        clean helm deps fuzz fuzz-build fuzz-bins fuzz-regress
all: $(BIN) $(UNIT_BIN)

$(BIN): $(MAIN_OBJ) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS_ALL)

$(UNIT_BIN): $(UNIT_OBJS) $(LIB_OBJS)
	$(CC) -o $@ $^ $(LDFLAGS_ALL)

$(BUILD)/%.o: %.c $(wildcard src/*.h src/cmd/*.h tests/unit/*.h tests/fuzz/*.h) | $(BUILD)/gen/templates.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -c -o $@ $<

# Templates are embedded at build time: a generated C file holds each one as a byte array.
$(BUILD)/embed: scripts/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -Wall -Wextra -Werror -o $@ $<

$(BUILD)/gen/templates.c: $(BUILD)/embed $(TEMPLATES)
	@mkdir -p $(BUILD)/gen
	$(BUILD)/embed $(BUILD)/gen/templates $(TEMPLATES)

$(BUILD)/gen/templates.o: $(BUILD)/gen/templates.c
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# --- tests -------------------------------------------------------------------------------
# `make test` runs the suite against the regular build; `make check` adds the sanitizer
# build and valgrind, which is what CI runs.
test: all helm
	CHARTREUSE_BIN=$(abspath $(BIN)) CHARTREUSE_UNIT=$(abspath $(UNIT_BIN)) \
	  $(PYTEST) -q $(TESTS) $(PYTEST_ARGS)

# The end-to-end scenarios alone (they also run in `make test`, hence in `make check`).
e2e: all helm
	CHARTREUSE_BIN=$(abspath $(BIN)) CHARTREUSE_UNIT=$(abspath $(UNIT_BIN)) \
	  $(PYTEST) -q $(TESTS) -m e2e $(PYTEST_ARGS)

asan:
	$(MAKE) BUILD=build/asan BIN=build/asan/chartreuse \
	  OPTFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" all

# The whole suite, Helm included: Helm runs the binary under test through a staged plugin
# (tests/plugin_stage.py).
test-asan: asan helm
	CHARTREUSE_SLOWDOWN=3 \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	CHARTREUSE_BIN=$(abspath build/asan/chartreuse) CHARTREUSE_UNIT=$(abspath build/asan/unit-tests) \
	  $(PYTEST) -q $(TESTS) $(PYTEST_ARGS)

# The suite but the fault matrix (marked timing), whose signals and faults are aimed at
# moments timed for a binary that does not run 20-50 times slower.
valgrind: all helm
	CHARTREUSE_SLOWDOWN=10 \
	CHARTREUSE_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all --num-callers=50 --suppressions=$(abspath tests/valgrind.supp)" \
	CHARTREUSE_BIN=$(abspath $(BIN)) CHARTREUSE_UNIT=$(abspath $(UNIT_BIN)) \
	  $(PYTEST) -q $(TESTS) -m "not timing" $(PYTEST_ARGS)

check:
	bash scripts/check.sh

# --- fuzzing ---------------------------------------------------------------------------------
# libFuzzer targets (tests/fuzz/fuzz_<name>.c) linked with the library objects built by clang
# with ASan+UBSan and the fuzzer's coverage. `make fuzz` fuzzes each target for FUZZ_SECONDS
# (FUZZ_TARGETS="a b" picks some); `make fuzz-regress` runs every target once over its seed
# corpus and its regressions, without fuzzing (part of `make check`). See tests/fuzz/README.md.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

fuzz-build:
	$(MAKE) --no-print-directory BUILD=build/fuzz CC=$(FUZZ_CC) \
	  OPTFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SANFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" \
	  FUZZ_TARGETS="$(FUZZ_TARGETS)" fuzz-bins

fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz_%)

$(BUILD)/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(LIB_OBJS)
	$(CC) -o $@ $^ -fsanitize=fuzzer,address,undefined $(LDFLAGS) $(PKG_LIBS) -lpthread

fuzz: fuzz-build
	bash scripts/fuzz.sh run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-regress: fuzz-build
	bash scripts/fuzz.sh regress $(FUZZ_TARGETS)

helm:
	@bash scripts/get-helm.sh >/dev/null

deps:
	bash scripts/setup.sh

# --- benchmarks ----------------------------------------------------------------------------
bench: bench-post-render bench-migrate bench-pods

bench-post-render: all helm
	bash scripts/bench-post-render.sh

bench-migrate: all
	bash scripts/bench-migrate.sh

bench-pods: all
	$(PYTHON) scripts/bench-pods.py

# --- demo and install ----------------------------------------------------------------------
demo: all helm
	bash scripts/demo.sh

PREFIX ?= /usr/local
install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/chartreuse
	ln -sf chartreuse $(DESTDIR)$(PREFIX)/bin/chartreuse-post-render

# --- release --------------------------------------------------------------------------------
# `make bundle` lays out the relocatable tree the image ships (stripped binary and its
# libraries, deploy/bundle-runtime.sh); `make dist` packs it as the release asset
# dist/chartreuse_<version>_linux_<arch>.tar.gz that install-binary.sh downloads, and
# `make checksums` writes dist/checksums.txt over every asset in dist/. The Dockerfile and
# .github/workflows/release.yml call these targets.
ARCH       ?= $(shell uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')
BUNDLE     ?= build/bundle/chartreuse
DIST       ?= dist
DIST_ASSET := $(DIST)/chartreuse_$(VERSION)_linux_$(ARCH).tar.gz

.PHONY: bundle dist checksums
bundle: $(BIN)
	rm -rf $(BUNDLE)
	mkdir -p $(BUNDLE)
	cp $(BIN) $(BUNDLE).stripped
	strip --strip-unneeded $(BUNDLE).stripped
	sh deploy/bundle-runtime.sh $(BUNDLE).stripped $(BUNDLE)
	rm -f $(BUNDLE).stripped
	$(BUNDLE)/bin/chartreuse version

dist: bundle
	@mkdir -p $(DIST)
	tar -C $(BUNDLE) --owner=0 --group=0 --numeric-owner --sort=name -czf $(DIST_ASSET) .
	$(MAKE) --no-print-directory checksums DIST=$(DIST)

checksums:
	cd $(DIST) && sha256sum chartreuse_*_linux_*.tar.gz > checksums.txt
	cat $(DIST)/checksums.txt

clean:
	rm -rf build bin dist
