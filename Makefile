# ssegate: one GNU Makefile with pkg-config.
#   make            build ./ssegate (and the demo backend, unit tests, fuzz replayers)
#   make run        bootstrap, build, run the example gateway with the demo backend
#   make test       bootstrap, build, run every test (SANITIZE=1 for ASan + UBSan)
#   make bench      bootstrap (with nginx and haproxy), build, run the benchmarks
#   make fuzz       build the libFuzzer harnesses with clang

CC      ?= gcc
PKGS    := libnghttp2 openssl libfyaml libpcre2-8
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wno-format-nonliteral -Werror
OPT     ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

ifeq ($(SANITIZE),1)
  B      := build-san
  SANFL  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT    := -O1 -g
else
  B      := build
  SANFL  :=
endif

CFLAGS  := $(CSTD) $(WARN) $(OPT) $(SANFL) -pthread -Isrc $(PKG_CFLAGS)
LDFLAGS := $(SANFL) -pthread
LDLIBS  := $(PKG_LIBS) -lm

SRCS      := $(wildcard src/*.c src/*/*.c)
HDRS      := $(wildcard src/*.h src/*/*.h)
OBJS      := $(SRCS:src/%.c=$(B)/src/%.o)
LIB_OBJS  := $(filter-out $(B)/src/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
REPLAY_BINS := $(FUZZ_SRCS:fuzz/fuzz_%.c=$(B)/fuzz/replay_%)
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(B)/examples/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(B)/bench/%)

SSEGATE := $(B)/ssegate

.PHONY: all run test unit replay integration bench fuzz clean bootstrap check-config

all: ssegate $(UNIT_BINS) $(REPLAY_BINS) $(EXAMPLE_BINS) $(BENCH_BINS)

ssegate: $(SSEGATE)
	@if [ "$(B)" = build ]; then cp $(SSEGATE) ssegate.tmp && mv -f ssegate.tmp ssegate; fi

$(SSEGATE): $(OBJS) | banned layers
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: banned layers
banned:
	@if grep -rnE --include='*.[ch]' '\b(strcpy|strcat|sprintf|vsprintf|gets)\s*\(' src/; then \
		echo "banned function in src/ (use snprintf / memcpy with lengths)"; exit 1; fi

# Includes point down the layers of src/ (docs/CONVENTIONS.md).
layers:
	@bash scripts/check-layers.sh

$(B)/src/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(LIB_OBJS) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS) -lcmocka

$(B)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< fuzz/replay.c $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)

$(B)/examples/%: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) $(SANFL) -o $@ $< $(LDFLAGS)

$(B)/bench/%: bench/%.c bench/proc.h $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	@$(MAKE) --no-print-directory all >/dev/null
	@bash scripts/run-demo.sh

test: bootstrap
	@$(MAKE) --no-print-directory all
	@bash scripts/test.sh $(B)

unit: all
	@for t in $(UNIT_BINS); do $$t || exit 1; done

bench:
	@SG_BOOTSTRAP_BENCH=1 bash scripts/bootstrap.sh
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh $(B)

FUZZ_CC ?= clang
fuzz: $(FUZZ_SRCS:fuzz/fuzz_%.c=$(B)/fuzz/libfuzzer_%)
$(B)/fuzz/libfuzzer_%: fuzz/fuzz_%.c $(filter-out src/main.c,$(SRCS))
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -Isrc $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) -lm -pthread

clean:
	rm -rf build build-san ssegate

-include $(OBJS:.o=.d)
