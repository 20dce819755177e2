# mailsync: non-recursive build. Every pkg/*/*.c goes into one static
# library; every cmd/<prog>/ becomes bin/<prog>; every tests/unit/*_test.c
# becomes a cmocka test binary; every tests/fuzz/fuzz_*.c is built twice:
# as a corpus replayer (always, so fuzzers never rot) and, by `make fuzz`,
# as a libFuzzer binary.
#
# Flavours (FLAVOUR=...): release (default), asan (ASan+UBSan, clang),
# fuzz (clang libFuzzer). Each builds under build/<flavour>/.

FLAVOUR ?= release
B ?= build/$(FLAVOUR)

ifeq ($(FLAVOUR),release)
CC ?= cc
OPT := -O2 -g
SAN :=
BIN ?= bin
else ifeq ($(FLAVOUR),asan)
CC := clang
OPT := -O1 -g -fno-omit-frame-pointer
SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
BIN := $(B)/bin
else ifeq ($(FLAVOUR),fuzz)
CC := clang
OPT := -O1 -g -fno-omit-frame-pointer
SAN := -fsanitize=fuzzer-no-link,address,undefined
BIN := $(B)/bin
else
$(error unknown FLAVOUR '$(FLAVOUR)': use release, asan or fuzz)
endif

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla -Wformat=2 -fno-common -Werror
CPPFLAGS += -D_GNU_SOURCE -DNNG_ELIDE_DEPRECATED -Ipkg
CFLAGS := -std=c11 $(OPT) $(SAN) $(WARN) -MMD -MP
LDFLAGS := $(SAN)
LDLIBS := -lnng -lmsgpackc -lsqlite3 \
	-lcurl -ljansson -lssl -lcrypto -lpthread -lm

PKG_SRCS := $(sort $(wildcard pkg/*/*.c))
PKG_OBJS := $(PKG_SRCS:%.c=$(B)/%.o)
LIB := $(B)/libmailsync.a

CMDS := $(notdir $(sort $(wildcard cmd/*)))
CMD_BINS := $(CMDS:%=$(BIN)/%)

UNIT_SRCS := $(sort $(wildcard tests/unit/*_test.c))
UNIT_BINS := $(UNIT_SRCS:%.c=$(B)/%)

FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_REPLAY := $(FUZZ_SRCS:tests/fuzz/%.c=$(B)/tests/fuzz/%-replay)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/tests/fuzz/%)

.PHONY: all deps test check-asan fuzz bench demo lint format clean \
	unit leakcheck

all: $(LIB) $(CMD_BINS) $(UNIT_BINS) $(FUZZ_REPLAY)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(PKG_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# One binary per cmd/<prog>/ folder, from every .c file in it.
define CMD_RULE
$(BIN)/$(1): $(patsubst %.c,$(B)/%.o,$(wildcard cmd/$(1)/*.c)) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach c,$(CMDS),$(eval $(call CMD_RULE,$(c))))

$(UNIT_BINS): $(B)/tests/unit/%: $(B)/tests/unit/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

$(FUZZ_REPLAY): $(B)/tests/fuzz/%-replay: $(B)/tests/fuzz/%.o $(B)/tests/fuzz/replay_main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(FUZZ_BINS): build/fuzz/tests/fuzz/%: tests/fuzz/%.c
	$(MAKE) FLAVOUR=fuzz build/fuzz/libmailsync.a build/fuzz/tests/fuzz/$*.o
	clang -fsanitize=fuzzer,address,undefined -o $@ \
		build/fuzz/tests/fuzz/$*.o build/fuzz/libmailsync.a $(LDLIBS)

# Installs the Debian packages the build, tests and demo need (as root).
deps:
	@scripts/deps.sh

unit: all
	@scripts/run-unit.sh $(B)

# The README's test command: deps, build, unit tests, fuzz corpus replay,
# end-to-end tests against a real Dovecot.
test: deps
	$(MAKE) all
	scripts/run-tests.sh $(FLAVOUR)

check-asan: deps
	$(MAKE) FLAVOUR=asan all
	scripts/run-tests.sh asan

FUZZ_SECONDS ?= 60
fuzz: deps
	$(MAKE) FLAVOUR=fuzz build/fuzz/libmailsync.a
	$(MAKE) $(FUZZ_BINS)
	scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

bench: deps
	$(MAKE) all
	bench/run.sh

demo: deps
	$(MAKE) all
	scripts/demo.sh

leakcheck: all
	VALGRIND=1 scripts/run-unit.sh $(B)

lint:
	clang-format --dry-run --Werror $(PKG_SRCS) $(wildcard cmd/*/*.c)

format:
	clang-format -i $(PKG_SRCS) $(wildcard pkg/*/*.h) $(wildcard cmd/*/*.c)

clean:
	rm -rf build bin

-include $(PKG_OBJS:.o=.d) $(wildcard $(B)/cmd/*/*.d) \
	$(wildcard $(B)/tests/*/*.d)
