# pybpfmap: `make` sets everything up (system packages, libbpf, .venv); `make test`, `make demo`, `make bench`.
# Every target installs what it needs first, so each works on a fresh machine.

# Debian's own interpreter: the one python3-dev's headers belong to, and built with PGO.
PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
LIBBPF_A := vendor/libbpf/build/lib/libbpf.a
# Debian packages the build and the tests need; on the base image libelf-dev, clang-14 (compiles the tests'
# BPF programs), bpftool (the tests' independent oracle), bpftrace (whose histograms the tests read),
# systemtap-sdt-dev (<sys/sdt.h>, USDT probes in a test program) and tmux (the terminal of watch's test) are missing.
SYSTEM_DEPS := gcc make pkg-config patch libelf-dev zlib1g-dev libffi-dev linux-libc-dev python3-dev python3-venv \
	clang-14 llvm-14 bpftool strace systemtap-sdt-dev bpftrace tmux
STAMP := $(VENV)/.installed
RUFF_PATHS := src tests examples tools build_ffi.py $(wildcard benchmarks)

.PHONY: all setup system-deps libbpf test lint docs demo bench fuzz stress clean distclean test-kernels

all: setup

setup: $(STAMP)

system-deps:
	@missing=$$(for p in $(SYSTEM_DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "missing system packages: $$missing"; \
			echo "run 'make' as root, or: sudo apt-get install -y $$missing"; exit 1; \
		fi; \
		echo "installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

libbpf: system-deps
	vendor/libbpf/fetch-build.sh

$(LIBBPF_A):
	$(MAKE) libbpf

$(STAMP): $(LIBBPF_A) pyproject.toml setup.py build_ffi.py include/*.h include/*.c | system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

test: lint docs
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check $(RUFF_PATHS)
	$(PY) -m mypy

# The API reference from the docstrings (mkdocs.yml; docs/), built into site/ (open site/index.html). Strict: a
# warning, such as a reference to a name that is not documented, fails the build. With PY pointing at another
# environment that has the docs extra (make docs PY=/path/to/python) the local setup is skipped.
docs: $(if $(filter $(VENV)/bin/python,$(PY)),setup)
	$(PY) -m mkdocs build --strict

# The kernel matrix (tests/kernels/): the kernel-facing tests on Debian's 5.10, 6.1 and 6.12 under qemu (TCG)
# with virtme-ng, and on the host; prints one matrix, fails if any kernel fails. KERNELS picks a subset
# ("host" is the host kernel), FULL=1 runs the whole suite, PYTEST_ARGS goes to every pytest, JOBS is the
# number of guests at once. Kernels and tools are cached in .kernels/.
KERNELS ?= 5.10 6.1 6.12 host
# Debian packages the matrix needs: qemu, a static busybox for virtme-ng's initramfs, depmod.
KERNEL_DEPS := qemu-system-x86 busybox-static kmod
PYTEST_ARGS ?=
JOBS ?= 3

test-kernels: setup
	@$(MAKE) --no-print-directory system-deps SYSTEM_DEPS="$(KERNEL_DEPS)"
	$(if $(filter-out host,$(KERNELS)),tests/kernels/fetch.sh $(filter-out host,$(KERNELS)))
	$(PYTHON) tests/kernels/matrix.py --kernels "$(KERNELS)" --jobs $(JOBS) $(if $(FULL),--full) -- $(PYTEST_ARGS)

# pybpfmap under load and faults (threads and processes with kernel producers, signal timers, forks, ring
# buffer overload, drains under inserts), about a minute; prints one table and fails on any loss.
stress: setup
	$(PY) tests/stress/run.py

# The property suite with the "fuzz" hypothesis profile, >= 100,000 examples of the crash-prone target and
# 10,000 mutated BTF and ELF inputs, in subprocess batches; prints "fuzz: N examples, F failures", fails if F > 0.
fuzz: setup
	$(PY) tests/fuzz/run.py

demo: setup
	$(PY) examples/packet_monitor.py

bench: setup
	$(MAKE) -C benchmarks PYTHON=$(CURDIR)/$(PY)

clean:
	rm -rf build dist site benchmarks/build src/*.egg-info src/pybpfmap/*.so .pytest_cache .mypy_cache .ruff_cache
	rm -f $(STAMP)
	find . -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) vendor/libbpf/build vendor/libbpf/src vendor/libbpf/download
