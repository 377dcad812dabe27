#!/usr/bin/env bash
# Installs the Debian 12 packages Coffer needs to build, run and test.
# Idempotent: packages already present are skipped without touching apt.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format
  libmicrohttpd-dev libgnutls28-dev libssl-dev libsqlite3-dev libjansson-dev
  libcurl4-openssl-dev libargon2-dev libqrencode-dev
  libcmocka-dev
  curl openssl sqlite3 oathtool xxd python3 python3-yaml procps util-linux
  libseccomp-dev cppcheck valgrind sslscan
  libp11-kit-dev softhsm2 opensc
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The OIDC end-to-end test runs an identity provider from the npm registry:
# Node.js and npm from Debian unless the machine already has them.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  for p in nodejs npm; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
