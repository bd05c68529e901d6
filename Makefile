# SPDX-License-Identifier: ISC
# sockserverd - one GNU Makefile for the daemon, the plugins, the tests and
# the install.  The user owns CFLAGS, CPPFLAGS and LDFLAGS; project flags
# live in their own variables (redis style).

VERSION		= 0.1.0

PREFIX		?= /usr/local
SBINDIR		?= $(PREFIX)/sbin
LIBDIR		?= $(PREFIX)/lib
INCLUDEDIR	?= $(PREFIX)/include
SYSCONFDIR	?= $(PREFIX)/etc
MANDIR		?= $(PREFIX)/share/man
PKGCONFIGDIR	?= $(LIBDIR)/pkgconfig
UNITDIR		?= $(LIBDIR)/systemd/system
HANDLERDIR	?= $(LIBDIR)/sockserverd/handlers
DESTDIR		?=

CC		?= cc
PKG_CONFIG	?= pkg-config
INSTALL		?= install

STD	= -std=c11 -D_GNU_SOURCE
WARN	= -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes \
	  -Wmissing-declarations -Wshadow -Wpointer-arith -Wcast-qual \
	  -Wformat=2 -Werror=format-security -Wno-missing-field-initializers
OPT	= -O2 -g
# Stack-clash probing touches every page a large frame spans, so an
# overflow always meets a coroutine's guard (daemon/coro.h CORO_GUARD).
HARDEN	= -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection
ifeq ($(DEBUG),1)
OPT	= -O0 -g3
HARDEN	= -fstack-protector-strong -fstack-clash-protection
endif
ifeq ($(WERROR),1)
WARN	+= -Werror
endif
ifneq ($(SANITIZER),)
SAN	= -fsanitize=$(SANITIZER) -fno-sanitize-recover=all \
	  -fno-omit-frame-pointer
endif

CONFIG_CFLAGS	?= $(shell $(PKG_CONFIG) --cflags libconfig 2>/dev/null)
CONFIG_LIBS	?= $(shell $(PKG_CONFIG) --libs libconfig 2>/dev/null || echo -lconfig)
EV_CFLAGS	?= $(shell $(PKG_CONFIG) --cflags libev 2>/dev/null)
EV_LIBS		?= $(shell $(PKG_CONFIG) --libs libev 2>/dev/null || echo -lev)
CHECK_CFLAGS	?= $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS	?= $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck)

PATHS	= -DSSD_VERSION='"$(VERSION)"' -DSSD_SYSCONFDIR='"$(SYSCONFDIR)"' \
	  -DSSD_HANDLERDIR='"$(HANDLERDIR)"'
FINAL_CFLAGS	= $(STD) $(WARN) $(OPT) $(HARDEN) $(SAN) -MMD -MP \
		  -Iinclude $(CONFIG_CFLAGS) $(EV_CFLAGS) $(SSL_CFLAGS) $(CPPFLAGS) $(CFLAGS)
FINAL_LDFLAGS	= $(SAN) $(LDFLAGS)
SSL_CFLAGS	?= $(shell $(PKG_CONFIG) --cflags openssl 2>/dev/null)
SSL_LIBS	?= $(shell $(PKG_CONFIG) --libs openssl 2>/dev/null || echo -lssl -lcrypto)
LIBS		= $(EV_LIBS) $(CONFIG_LIBS) $(SSL_LIBS) -lm -ldl -lpthread

# Each flavour builds in its own directory, so a sanitizer build never
# mixes objects with a plain one and both can exist side by side.
ifeq ($(SANITIZER),)
B	?= build
SSD	?= sockserverd
else
B	?= build/san-$(subst $(comma),-,$(SANITIZER))
SSD	?= $(B)/sockserverd
endif
comma	:= ,
CORE_SRCS	= $(filter-out daemon/main.c, $(wildcard daemon/*.c))
HANDLER_SRCS	= $(wildcard handlers/*.c)
CORE_OBJS	= $(CORE_SRCS:%.c=$(B)/%.o) $(HANDLER_SRCS:%.c=$(B)/%.o)
PLUGIN_SRCS	= $(wildcard handlers/examples/*.c)
PLUGINS		= $(PLUGIN_SRCS:handlers/examples/%.c=$(B)/plugins/%.so)
# The python plugin, where libpython3 is (see its rule).
PYTHON_CFLAGS	?= $(shell $(PKG_CONFIG) --cflags python3-embed 2>/dev/null)
PYTHON_LIBS	?= $(shell $(PKG_CONFIG) --libs python3-embed 2>/dev/null)
PYTHON_SRCS	= $(wildcard handlers/python/*.c)
ifneq ($(strip $(PYTHON_LIBS)),)
PLUGINS		+= $(B)/plugins/python.so
endif
TEST_PLUGIN_SRCS = $(wildcard tests/plugins/*.c)
TEST_PLUGINS	= $(TEST_PLUGIN_SRCS:tests/plugins/%.c=$(B)/tests/plugins/%.so)
# Preloaded into the daemon by some tests (failing pthread_create...).
TEST_PRELOADS	= $(patsubst tests/preload/%.c,$(B)/tests/preload/%.so, \
		  $(wildcard tests/preload/*.c))
UNIT_SRCS	= $(wildcard tests/unit/*.c tests/unit/fakes/*.c)
UNIT_OBJS	= $(UNIT_SRCS:%.c=$(B)/%.o)
GENERATED	= $(B)/man/sockserverd.8 $(B)/man/sockserverd.conf.5 \
		  $(B)/sockserverd.pc $(B)/systemd/sockserverd.service
DEPS_OK		= $(B)/.deps-build
CHECK_DEPS_OK	= $(B)/.deps-check
BENCH_DEPS_OK	= $(B)/.deps-bench

.PHONY: all check unit integration run install lint clean distclean deps bench \
	bench-tls bench-python bench-workers \
	bench-sources \
	check-valgrind valgrind-check soak check-systemd check-deb

all: $(SSD) $(PLUGINS) $(GENERATED)

# Installs (or names) missing packages once; see scripts/deps.sh.
$(DEPS_OK):
	@scripts/deps.sh build
	@mkdir -p $(B) && touch $@
$(CHECK_DEPS_OK):
	@scripts/deps.sh check
	@mkdir -p $(B) && touch $@
$(BENCH_DEPS_OK):
	@scripts/deps.sh bench
	@mkdir -p $(B) && touch $@
deps: $(CHECK_DEPS_OK)

# What embeds an install path is rebuilt when the paths change.
PATHS_NOW = $(PREFIX) $(SBINDIR) $(LIBDIR) $(INCLUDEDIR) $(SYSCONFDIR) \
	    $(MANDIR) $(UNITDIR) $(HANDLERDIR) $(VERSION)
$(B)/.paths: FORCE
	@mkdir -p $(B)
	@echo '$(PATHS_NOW)' | cmp -s - $@ || echo '$(PATHS_NOW)' > $@
.PHONY: FORCE
FORCE:

$(B)/%.o: %.c $(B)/.paths | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(FINAL_CFLAGS) $(PATHS) -c -o $@ $<

# Compiled-in handlers: the same source as a plugin, built the other way.
$(B)/handlers/%.o: handlers/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(FINAL_CFLAGS) -DSSD_BUILTIN -c -o $@ $<

$(B)/libcore.a: $(CORE_OBJS)
	rm -f $@
	ar rcs $@ $^

# Plugins see only ssd_* (exports.list); the daemon's objects all come
# from libcore.a, which -Wl,--whole-archive keeps whole for plugins.
$(SSD): $(B)/daemon/main.o $(B)/libcore.a daemon/exports.list
	$(CC) $(FINAL_LDFLAGS) -Wl,-z,now -Wl,-z,relro \
	    -Wl,--dynamic-list=daemon/exports.list \
	    -o $@ $(B)/daemon/main.o -Wl,--whole-archive $(B)/libcore.a \
	    -Wl,--no-whole-archive $(LIBS)

# Each plugin is linked once with -z defs against a stub of the ssd_* API
# (any other undefined symbol fails the build), then for real.
LINKCHECK	= $(B)/linkcheck/libssd-api-stub.so
$(LINKCHECK): handlers/linkcheck/ssd-api-stub.c include/sockserverd.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(STD) -Iinclude $(CONFIG_CFLAGS) -fPIC -shared -o $@ $<
# LDFLAGS too: a packager's -z relro -z now (debian/rules) holds for plugins.
PLUGIN_LINK = $(CC) $(FINAL_CFLAGS) -fPIC -shared -fvisibility=hidden $(LDFLAGS)
$(B)/plugins/%.so: handlers/examples/%.c include/sockserverd.h $(LINKCHECK) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(PLUGIN_LINK) -Wl,-z,defs -o $@.defs $< $(LINKCHECK) $(CONFIG_LIBS)
	rm -f $@.defs
	$(PLUGIN_LINK) -o $@ $< $(CONFIG_LIBS)

# The python plugin (handlers/python/*.c) links libpython3: python3-embed
# of pkg-config's default path (Debian's python3-dev, /usr/include/python3.X
# and libpython3.X.so; never a pyenv's, whose python3 may come first in
# PATH).  Built when python3-embed is there.  Its headers are -isystem:
# our warnings, not theirs.  -z nodelete: libpython cannot be unloaded.
PY_FLAGS	= $(patsubst -I%,-isystem %,$(PYTHON_CFLAGS))
$(B)/plugins/python.so: $(PYTHON_SRCS) include/sockserverd.h $(LINKCHECK) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(PLUGIN_LINK) $(PY_FLAGS) -Wl,-z,defs -o $@.defs $(PYTHON_SRCS) \
	    $(LINKCHECK) $(CONFIG_LIBS) $(PYTHON_LIBS)
	rm -f $@.defs
	$(PLUGIN_LINK) $(PY_FLAGS) -Wl,-z,nodelete -o $@ $(PYTHON_SRCS) \
	    $(CONFIG_LIBS) $(PYTHON_LIBS)

# Fixture plugins for the tests: built like any plugin, never installed.
$(B)/tests/plugins/%.so: tests/plugins/%.c include/sockserverd.h $(LINKCHECK) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(PLUGIN_LINK) -Wl,-z,defs -o $@.defs $< $(LINKCHECK) $(CONFIG_LIBS)
	rm -f $@.defs
	$(PLUGIN_LINK) -o $@ $< $(CONFIG_LIBS)

# One sed rule fills every .in file with the same paths as the binary.
SUBST	= sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	      -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@HANDLERDIR@|$(HANDLERDIR)|g' \
	      -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@PREFIX@|$(PREFIX)|g' \
	      -e 's|@UNITDIR@|$(UNITDIR)|g' \
	      -e 's|@VERSION@|$(VERSION)|g'
$(B)/man/%: man/%.in $(B)/.paths
	@mkdir -p $(dir $@)
	$(SUBST) $< > $@
$(B)/systemd/%: systemd/%.in $(B)/.paths
	@mkdir -p $(dir $@)
	$(SUBST) $< > $@
$(B)/sockserverd.pc: sockserverd.pc.in $(B)/.paths
	@mkdir -p $(dir $@)
	$(SUBST) $< > $@

$(B)/tests/unit/check_sockserverd: $(UNIT_OBJS) $(B)/libcore.a
	$(CC) $(FINAL_LDFLAGS) -o $@ $(UNIT_OBJS) $(B)/libcore.a $(CHECK_LIBS) \
	    $(LIBS)
$(B)/tests/unit/%.o: tests/unit/%.c $(B)/.paths | $(CHECK_DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(FINAL_CFLAGS) $(CHECK_CFLAGS) $(PATHS) -Idaemon \
	    -Itests/unit/fakes -c -o $@ $<

check: $(CHECK_DEPS_OK) all unit integration
	@$(MAKE) --no-print-directory fuzz-smoke

unit: $(B)/tests/unit/check_sockserverd
	$(B)/tests/unit/check_sockserverd

$(B)/tests/preload/%.so: tests/preload/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) -O2 -fPIC -shared -o $@ $< -ldl

# Under ThreadSanitizer, tests/tsan.supp (one race reported on libev's
# reuse of descriptor numbers; see there).
ifneq ($(findstring thread,$(SANITIZER)),)
INTEGRATION_ENV	= TSAN_OPTIONS="$(TSAN_OPTIONS) suppressions=$(CURDIR)/tests/tsan.supp"
endif
integration: $(SSD) $(PLUGINS) $(TEST_PLUGINS) $(TEST_PRELOADS) | $(CHECK_DEPS_OK)
	$(INTEGRATION_ENV) SSD_BIN=./$(SSD) \
	    SSD_TEST_PLUGINS=$(CURDIR)/$(B)/tests/plugins \
	    python3 tests/integration/run.py

# The integration suite with the daemon under valgrind's memcheck (not
# part of check: slow).  A test fails on any memcheck error or definite
# leak, in the daemon or in a child it forks; waits are scaled for the
# slowdown (tests/integration/ssdtest.py).  TESTS= selects tests.
check-valgrind: $(SSD) $(PLUGINS) $(TEST_PLUGINS) $(TEST_PRELOADS) | $(CHECK_DEPS_OK)
	@test -z "$(SANITIZER)" || \
	    { echo "check-valgrind: not with SANITIZER=$(SANITIZER)" >&2; exit 2; }
	@command -v valgrind >/dev/null || \
	    { echo "check-valgrind: valgrind is not installed" >&2; exit 2; }
	SSD_VALGRIND=1 SSD_BIN=./$(SSD) \
	    SSD_TEST_PLUGINS=$(CURDIR)/$(B)/tests/plugins \
	    python3 tests/integration/run.py $(TESTS)
valgrind-check: check-valgrind

# Soak test (not part of check): every model under churn, resets, slow
# peers, floods, exec, reloads and plugin swaps for SOAK_SECONDS, sampling
# the daemon's fds, threads, children and RSS into $(B)/soak.csv; fails
# on a failed request, a leak back at idle, RSS growth or a zombie.
SOAK_SECONDS	?= 600
soak: $(SSD) $(PLUGINS) | $(CHECK_DEPS_OK)
	SSD_BIN=./$(SSD) SSD_PLUGIN_DIR=$(CURDIR)/$(B)/plugins \
	    SOAK_SECONDS=$(SOAK_SECONDS) SOAK_CSV=$(B)/soak.csv \
	    python3 tests/soak/soak.py

# The installed daemon under a real systemd (not part of check: root, a
# Debian mirror the first time; about a minute then, 15-25 s once the
# bookworm root is cached in build/systemd-root).  Boots it with nspawn
# and checks the unit: start, reload, a bad reload, a plugin, the stop
# with fork and exec requests in progress, socket activation, restarts.
# Prints "SKIP: ..." and succeeds where it cannot run.
check-systemd:
	python3 tests/systemd/check-systemd.py

# The Debian package (not part of check): dpkg-buildpackage -us -uc on
# a copy of the tree (WERROR=1), lintian (fails on E: and W:), then, as
# root, dpkg -i into check-systemd's bookworm root booted with nspawn:
# the files, sockserverd -t, the unit enabled and started, remove, purge.
# About a minute once the roots are cached (build/systemd-root,
# build/deb-root); the .debs stay in build/deb-check.  Prints "SKIP: ..."
# and succeeds where it cannot run.
check-deb:
	python3 tests/deb/check-deb.py

# The benchmark (not part of check): sockserverd's echo under each model
# beside a minimal epoll echo server, one table of figures and ratios; then
# the TLS benchmark (bench-tls alone): echo over TLS beside a minimal epoll
# + OpenSSL echo server, and full handshakes beside nginx's stream module.
BENCH_TOOLS	= $(B)/bench/loadgen $(B)/bench/refserver $(B)/bench/forkrate \
		  $(B)/bench/dgramref \
		  $(B)/bench/sourceflood $(B)/bench/modelref
BENCH_TLS_TOOLS	= $(B)/bench/tlsload $(B)/bench/tlsref
$(B)/bench/%: tests/bench/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) -O2 $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<
$(BENCH_TLS_TOOLS): $(B)/bench/%: tests/bench/%.c | $(BENCH_DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) -Werror -O2 $(SSL_CFLAGS) $(CPPFLAGS) $(CFLAGS) \
	    $(LDFLAGS) -o $@ $< $(SSL_LIBS)
bench: $(SSD) $(PLUGINS) $(BENCH_TOOLS) $(BENCH_TLS_TOOLS) \
	    $(B)/tests/plugins/crashrate.so
	SSD_BIN=./$(SSD) BENCH_BIN=$(B)/bench tests/bench/run-bench.sh
	SSD_BIN=./$(SSD) BENCH_BIN=$(B)/bench \
	    BENCH_CRASHRATE=$(CURDIR)/$(B)/tests/plugins/crashrate.so \
	    tests/bench/run-workers-bench.sh
	SSD_BIN=./$(SSD) BENCH_BIN=$(B)/bench tests/bench/run-tls-bench.sh
	SSD_BIN=./$(SSD) BENCH_BIN=$(B)/bench \
	    SSD_PLUGIN_DIR=$(CURDIR)/$(B)/plugins \
	    python3 tests/bench/run-python-bench.py
# The python plugin against CPython's socketserver serving the same class
# (issue 13): ping-pong and new connections/s, thread and fork, with the
# ratios the issue asks for (about a minute; `make bench` runs it too).
bench-python: $(SSD) $(PLUGINS) $(B)/bench/loadgen
	SSD_BIN=./$(SSD) BENCH_BIN=$(B)/bench \
	    SSD_PLUGIN_DIR=$(CURDIR)/$(B)/plugins \
	    python3 tests/bench/run-python-bench.py

# worker_processes alone (issue 11): pp100 with 2 workers, restart latency,
# the crash storm.
bench-workers: $(SSD) $(B)/bench/loadgen $(B)/bench/refserver $(B)/tests/plugins/crashrate.so
	SSD_BIN=./$(SSD) BENCH_BIN=$(B)/bench \
	    BENCH_CRASHRATE=$(CURDIR)/$(B)/tests/plugins/crashrate.so \
	    tests/bench/run-workers-bench.sh
bench-tls: $(SSD) $(B)/bench/loadgen $(BENCH_TLS_TOOLS)
	SSD_BIN=./$(SSD) BENCH_BIN=$(B)/bench tests/bench/run-tls-bench.sh

# The memory bound of per-source state (not part of check): a million
# distinct sources under rate_per_source, the daemon's peak RSS against
# 64 MiB (tests/bench/run-sources.py; BENCH_SOURCES, BENCH_MODES).
bench-sources: $(SSD) $(B)/bench/sourceflood
	SSD_BIN=./$(SSD) BENCH_BIN=$(B)/bench python3 tests/bench/run-sources.py

# Fuzzing (STYLE R14): a libFuzzer harness per parser of outside bytes,
# tests/fuzz/fuzz_NAME.c, linked with the daemon's own objects built by
# clang with ASan and UBSan in build/fuzz/obj.  `make fuzz` runs each for
# FUZZ_SECONDS on a scratch copy of tests/fuzz/corpus/NAME (new inputs
# stay out of the tree; crashes go to build/fuzz/artifacts); `make check`
# runs a FUZZ_SMOKE_SECONDS smoke of each when clang has libFuzzer.
FUZZ_CC		?= clang
FUZZ_SECONDS	?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_FLAGS	?=
FB		= build/fuzz
FUZZ_SAN	= -fsanitize=address,undefined -fno-sanitize-recover=all \
		  -fno-omit-frame-pointer
FUZZ_CFLAGS	= $(STD) $(WARN) -O2 -g $(FUZZ_SAN) -MMD -MP -Iinclude \
		  $(CONFIG_CFLAGS) $(EV_CFLAGS) $(CPPFLAGS) $(CFLAGS)
FUZZ_NAMES	= $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS	= $(FUZZ_NAMES:%=$(FB)/fuzz_%)
FUZZ_OBJS	= $(CORE_SRCS:%.c=$(FB)/obj/%.o) $(HANDLER_SRCS:%.c=$(FB)/obj/%.o)

$(FB)/obj/daemon/%.o: daemon/%.c $(B)/.paths | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PATHS) -c -o $@ $<
$(FB)/obj/handlers/%.o: handlers/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -DSSD_BUILTIN \
	    -c -o $@ $<
$(FB)/libcore.a: $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $^
$(FB)/fuzz_%: tests/fuzz/fuzz_%.c $(FB)/libcore.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PATHS) -Idaemon -o $@ \
	    $< $(FB)/libcore.a $(LIBS)
fuzz-build: $(FUZZ_BINS)

# Each harness on a scratch copy of its corpus; its libFuzzer output in
# build/fuzz/NAME.log, the last lines shown.  Stops at the first finding.
fuzz: $(FUZZ_BINS)
	@mkdir -p $(FB)/artifacts
	@for h in $(FUZZ_NAMES); do \
	    rm -rf $(FB)/run/$$h && mkdir -p $(FB)/run/$$h && \
	    cp tests/fuzz/corpus/$$h/* $(FB)/run/$$h/ && \
	    echo "fuzz $$h: $(FUZZ_SECONDS)s (log: $(FB)/$$h.log)" && \
	    if ! LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp \
	        $(FB)/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) \
	        -print_final_stats=1 -artifact_prefix=$(FB)/artifacts/$$h- \
	        $(FUZZ_FLAGS) $(FB)/run/$$h > $(FB)/$$h.log 2>&1 \
	        < /dev/null; then \
	        tail -n 40 $(FB)/$$h.log; echo "fuzz $$h: FAILED"; exit 1; \
	    fi; \
	    grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units' \
	        $(FB)/$$h.log | sed 's/^/    /'; \
	done

# The smoke that `make check` runs: skipped, saying why, without a clang
# that can build a libFuzzer program.
fuzz-smoke:
	@mkdir -p $(FB)
	@echo 'int LLVMFuzzerTestOneInput(void *d, long n) { return 0; }' \
	    > $(FB)/probe.c
	@if $(FUZZ_CC) -fsanitize=fuzzer -o $(FB)/probe $(FB)/probe.c \
	    >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS); \
	else echo "fuzz-smoke: SKIPPED: $(FUZZ_CC) with libFuzzer" \
	    "(-fsanitize=fuzzer) not found; install clang to run it"; fi

fuzz-clean:
	rm -rf $(FB)
clean: fuzz-clean
.PHONY: fuzz fuzz-build fuzz-smoke fuzz-clean

-include $(shell find $(FB) -name '*.d' 2>/dev/null)

run: all
	./$(SSD) -c conf/demo.conf

install: all
	$(INSTALL) -D -m 755 $(SSD) $(DESTDIR)$(SBINDIR)/sockserverd
	$(INSTALL) -D -m 644 include/sockserverd.h \
	    $(DESTDIR)$(INCLUDEDIR)/sockserverd.h
	$(INSTALL) -D -m 644 $(B)/sockserverd.pc \
	    $(DESTDIR)$(PKGCONFIGDIR)/sockserverd.pc
	$(INSTALL) -d $(DESTDIR)$(HANDLERDIR)
	for p in $(PLUGINS); do \
	    $(INSTALL) -m 755 $$p $(DESTDIR)$(HANDLERDIR)/ || exit 1; done
	$(INSTALL) -D -m 644 $(B)/man/sockserverd.8 \
	    $(DESTDIR)$(MANDIR)/man8/sockserverd.8
	$(INSTALL) -D -m 644 $(B)/man/sockserverd.conf.5 \
	    $(DESTDIR)$(MANDIR)/man5/sockserverd.conf.5
	$(INSTALL) -D -m 644 man/sockserverd-handler.3 \
	    $(DESTDIR)$(MANDIR)/man3/sockserverd-handler.3
	$(INSTALL) -D -m 644 $(B)/systemd/sockserverd.service \
	    $(DESTDIR)$(UNITDIR)/sockserverd.service
	test -e $(DESTDIR)$(SYSCONFDIR)/sockserverd.conf || \
	    $(INSTALL) -D -m 644 conf/sockserverd.conf \
	    $(DESTDIR)$(SYSCONFDIR)/sockserverd.conf

lint: all
	@if command -v mandoc >/dev/null; then \
	    mandoc -Tlint -W warning $(filter $(B)/man/%, $(GENERATED)) \
	    man/sockserverd-handler.3; \
	else \
	    for m in $(filter $(B)/man/%, $(GENERATED)) \
	    man/sockserverd-handler.3; do \
	    groff -mdoc -ww -z $$m || exit 1; done; fi
	-cppcheck -q --enable=warning,portability --std=c11 -Iinclude daemon handlers
	-shellcheck scripts/*.sh .ci/run
	-clang-format --dry-run daemon/*.c handlers/*.c 2>&1 | tail -n 3

clean:
	rm -rf $(B)/daemon $(B)/handlers $(B)/plugins $(B)/tests $(B)/man $(B)/bench \
	    $(B)/systemd $(B)/linkcheck $(B)/libcore.a $(B)/sockserverd.pc $(B)/.paths $(SSD)

distclean: clean
	rm -rf $(B)

-include $(shell find $(B)/daemon $(B)/handlers $(B)/plugins $(B)/tests \
    -name '*.d' 2>/dev/null)
