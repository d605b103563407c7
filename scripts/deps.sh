#!/usr/bin/env bash
# Finds redis-server, redis-sentinel, redis-cli, chromium, PostgreSQL's
# initdb, SoftHSM2 and gcc, installing them from Debian's packages when they are missing and we
# may (root, or passwordless sudo). The Sentinel, Cluster and TLS tests need
# all three Redis programs (internal/testredis); the history store's
# PostgreSQL tests run a private server from Debian's binaries under
# /usr/lib/postgresql/*/bin (internal/testpg), so a postgres on PATH is not
# enough. SoftHSM2 (softhsm2-util and libsofthsm2.so) and gcc serve the
# PKCS#11 signer's tests, built with cgo and -tags pkcs11 (internal/testhsm).
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
if ! command -v redis-cli >/dev/null 2>&1; then
  echo "deps: redis-cli is missing (it comes with redis-tools)"
  need+=(redis-tools)
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  need+=(chromium)
fi
initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$initdb" ]; then
  need+=(postgresql)
fi
# The HSM signer's tests (go test -tags pkcs11) run against SoftHSM2's
# PKCS#11 module and need cgo, so a C compiler.
softhsm=$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*-linux-gnu/softhsm/libsofthsm2.so 2>/dev/null | head -1 || true)
if ! command -v softhsm2-util >/dev/null 2>&1 || [ -z "$softhsm" ]; then
  need+=(softhsm2)
fi
if ! command -v gcc >/dev/null 2>&1; then
  echo "deps: gcc is missing (cgo, for the PKCS#11 tests)"
  need+=(gcc libc6-dev)
fi
if [ ${#need[@]} -eq 0 ]; then
  echo "deps: found $(redis-server --version | awk '{print $1, $2, $3}'), redis-sentinel, $(redis-cli --version), $( (chromium --version || chromium-browser --version) 2>/dev/null | head -1), $("$initdb" --version), SoftHSM2 $(softhsm2-util --version) ($softhsm) and $(gcc --version | head -1)"
  exit 0
fi
echo "deps: missing ${need[*]}: installing from Debian's packages (apt-get)"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "deps: not root and no passwordless sudo; install them yourself: apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
if [ -z "$initdb" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "deps: postgresql installed but no /usr/lib/postgresql/*/bin/initdb" >&2
  exit 1
fi
echo "deps: installed ${need[*]}"
