#!/usr/bin/env bash
# Installs what the emulator and its tests need, once: a virtualenv in .venv with the package
# (editable) and its test tools. Re-running is cheap: it only reinstalls when pyproject.toml changed.
# Leshan (Java) is fetched by the tests themselves with mvn into ~/.cache/telit-emu.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  if [ "${TELIT_EMU_DTLS:-0}" = "1" ] && ! command -v automake >/dev/null 2>&1; then
    echo "setup: installing autoconf/automake for the DTLS build" >&2
    (apt-get update -qq && apt-get install -y -qq autoconf automake) >&2
  fi
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".[test]" >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi
