#!/usr/bin/env bash
# The README's test command: install what the tests need, then lint, type-check and test.
# Debian packages (the real gokey, age, systemd-creds, swtpm, nix, sshd the tests drive)
# are installed when missing; the Python package goes into .venv with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t packages < scripts/debian-packages.txt
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check src tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
