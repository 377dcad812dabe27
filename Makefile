# Coffer top-level Makefile.
#   make        build build/coffer
#   make run    install deps, build, initialise ./coffer-data (once), start the server
#   make test   install deps, build, static checks, every test under ASan/UBSan,
#               a valgrind subset, and each fuzz target for FUZZ_TEST_SECONDS
#   make fuzz   build libFuzzer targets and run each for FUZZ_SECONDS
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
# Unit tests whose code runs on several threads, also run under ThreadSanitizer.
TSAN_TESTS ?= test_meta_memo test_audit_log test_audit_concurrency
DATA       ?= coffer-data
LISTEN     ?= 127.0.0.1:8443
FUZZ_SECONDS ?= 30
FUZZ_TEST_SECONDS ?= 20
JOBS       ?= $(shell nproc)

.PHONY: all build deps run test test-fast fuzz tsan format clean

all: build

deps:
	bash scripts/install-deps.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: deps build
	@if [ ! -d $(DATA) ]; then ./$(BUILD)/coffer init --data $(DATA); fi
	./$(BUILD)/coffer server --data $(DATA) --listen $(LISTEN)

# The full suite: a normal build (the binary users run) plus a sanitizer
# build in which every unit and end-to-end test runs.
test: deps build
	bash scripts/static-check.sh
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCOFFER_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j 2
	bash scripts/valgrind-check.sh $(BUILD)
	$(MAKE) tsan
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j 2

# The multi-threaded unit tests under ThreadSanitizer; any report fails.
tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCOFFER_TSAN=ON >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_TESTS)
	cd $(TSAN_BUILD) && for t in $(TSAN_TESTS); do \
	  TSAN_OPTIONS=halt_on_error=1:exitcode=66 ./$$t >$$t.log 2>&1 \
	    || { tail -n 60 $$t.log; echo "tsan: $$t failed"; exit 1; }; \
	  echo "tsan: $$t clean"; done

fuzz: deps
	CC=clang CFLAGS=-Wno-unknown-warning-option cmake -S . -B $(FUZZ_BUILD) -DCOFFER_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	bash fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD)
