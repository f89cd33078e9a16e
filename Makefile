# Thin wrapper so the README can say two things: `make run` and `make test`.
# Everything real lives in CMakeLists.txt; the build directory is always build/.
BUILD      ?= build
PORT       ?= 8080
ARGS       ?=
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
ifeq ($(WERROR),1)
CMAKE_ARGS += -DWS_WERROR=ON
endif

.PHONY: all deps test-deps bench-deps configure build run test clean

all: build

deps:
	@scripts/deps.sh

test-deps:
	@scripts/deps.sh --test

# bench/compare.sh's peers, gnuplot and the npm modules (bench only; see docs/benchmarks.md)
bench-deps:
	@scripts/deps.sh --bench

configure:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

run: deps
	@$(MAKE) --no-print-directory build
	./$(BUILD)/uringws -p $(PORT) $(ARGS)

test: test-deps
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 900

clean:
	rm -rf $(BUILD)
