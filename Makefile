# smelt build.
#   make            release build: build/smelt
#   make test       build and run every test (unit, format, CLI)
#   make asan       build under AddressSanitizer + UndefinedBehaviorSanitizer and run the tests
#   make install PREFIX=/usr/local
# Objects of each configuration live in build/<config>/ so flags never mix.

CC      ?= cc
PREFIX  ?= /usr/local
CONFIG  ?= release
PKGS    := jansson libzip libprotobuf-c libcrypto libpcre2-8 openblas zlib
ONNX_PROTO ?= /usr/include/onnx/onnx.proto

# ---- dependency discovery (pkg-config), printed once so a failing build says what is missing ----
MISSING := $(strip $(foreach p,$(PKGS) cmocka,$(if $(shell pkg-config --exists $(p) && echo y),,$(p))))
ifneq ($(MISSING),)
  $(error missing libraries (pkg-config): $(MISSING); run 'bash scripts/setup.sh' as root)
endif
PROTOC_C := $(shell command -v protoc-c 2>/dev/null)
ifeq ($(PROTOC_C),)
  $(error protoc-c not found; run 'bash scripts/setup.sh' as root)
endif
ifeq ($(wildcard $(ONNX_PROTO)),)
  $(error $(ONNX_PROTO) not found (Debian package libonnx-dev); run 'bash scripts/setup.sh' as root)
endif
NVCC := $(shell command -v nvcc 2>/dev/null)
ifeq ($(MAKELEVEL),0)
  $(info smelt: found $(foreach p,$(PKGS) cmocka,$(p)-$(shell pkg-config --modversion $(p))) protoc-c; nvcc: $(if $(NVCC),$(NVCC) (CUDA kernels not built yet),none (CPU build)))
endif

DEP_CFLAGS := $(shell pkg-config --cflags $(PKGS))
DEP_LIBS   := $(shell pkg-config --libs $(PKGS)) -lm -lpthread
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka)
CMOCKA_LIBS   := $(shell pkg-config --libs cmocka)

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
BASE_CFLAGS := -std=c11 -D_DEFAULT_SOURCE $(WARN) -I. -Ibuild/gen $(DEP_CFLAGS) -g
ifeq ($(CONFIG),asan)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDOPT := -fsanitize=address,undefined
else ifeq ($(CONFIG),debug)
  OPT := -O0
  LDOPT :=
else
  OPT := -O2
  LDOPT :=
endif
CFLAGS_ALL := $(BASE_CFLAGS) $(OPT) $(CFLAGS)

B := build/$(CONFIG)
GEN := build/gen
LIB_DIRS := core formats quant distill compile runtime evals tools
LIB_SRC  := $(filter-out tools/main.c,$(shell find $(LIB_DIRS) -name '*.c' 2>/dev/null | sort))
LIB_OBJ  := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC)) $(B)/obj/gen/onnx.pb-c.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
SMELT_BIN := $(if $(filter release,$(CONFIG)),build/smelt,$(B)/smelt)

.PHONY: all test asan check install clean unit-bins bench conformance
all: $(SMELT_BIN)

$(GEN)/onnx.pb-c.c $(GEN)/onnx.pb-c.h: $(ONNX_PROTO)
	@mkdir -p $(GEN)
	$(PROTOC_C) --c_out=$(GEN) -I$(dir $(ONNX_PROTO)) $(ONNX_PROTO)

$(B)/obj/gen/onnx.pb-c.o: $(GEN)/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -I$(GEN) $(DEP_CFLAGS) $(OPT) -g -c $< -o $@

$(B)/obj/%.o: %.c $(GEN)/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(B)/libsmelt.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(SMELT_BIN): $(B)/obj/tools/main.o $(B)/libsmelt.a
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(LDOPT) -o $@ $^ $(DEP_LIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libsmelt.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(CMOCKA_CFLAGS) $(LDOPT) -o $@ $< $(B)/libsmelt.a $(DEP_LIBS) $(CMOCKA_LIBS)

unit-bins: $(UNIT_BIN)

# ONNX node conformance of the graph executor (runtime/graph/). `make conformance` writes the full
# report to build/conformance.txt; `make test` runs it through tests/cli/graph_conformance.sh, which
# fails when a test listed in tests/conformance/claimed.txt stops passing.
CONF_BIN := $(B)/conformance/run_conformance
$(CONF_BIN): tests/conformance/run_conformance.c $(B)/libsmelt.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LDOPT) -o $@ $< $(B)/libsmelt.a $(DEP_LIBS)

conformance: $(CONF_BIN)
	@mkdir -p build
	$(CONF_BIN) --report build/conformance.txt

test: $(SMELT_BIN) $(UNIT_BIN) $(CONF_BIN)
	@bash tests/run.sh $(B) $(SMELT_BIN)

check: test

asan:
	@$(MAKE) --no-print-directory CONFIG=asan test

$(B)/bench_%: tests/bench/bench_%.c $(B)/libsmelt.a
	$(CC) $(CFLAGS_ALL) $(LDOPT) -o $@ $< $(B)/libsmelt.a $(DEP_LIBS)

bench: $(SMELT_BIN) $(B)/bench_import $(B)/bench_llm $(B)/bench_graph $(B)/bench_quant $(B)/bench_qgemm_i8
	@bash tests/bench/run.sh $(SMELT_BIN) $(B)

install: $(SMELT_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(SMELT_BIN) $(DESTDIR)$(PREFIX)/bin/smelt

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
