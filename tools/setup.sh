#!/usr/bin/env bash
# Installs what the emulator and its tests need, once: a virtualenv in .venv with the package
# (editable), its test tools and its DTLS support (aiocoap[tinydtls], which builds DTLSSocket from
# source: Debian's autoconf and automake are installed first if missing). Re-running is cheap: it only
# reinstalls when pyproject.toml or this script changed. Everything it prints goes to stderr.
# Leshan (Java) is fetched by the tests themselves with mvn into ~/.cache/telit-emu.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-python3}"
# DTLSSocket 0.2.x forces the extended master secret, which Leshan 2.0.0-M4 (Scandium 2.6.3) lacks:
# the handshake then fails. 0.1.19 works (see emulator/lwm2m/dtls.py).
dtlssocket="DTLSSocket==0.1.19"
stamp=".venv/.installed-$(cat pyproject.toml tools/setup.sh | sha1sum | cut -c1-12)"

# Debian packages the DTLSSocket build needs, installed only when missing (root, or password-less sudo).
build_deps() {
  local missing=() sudo=()
  command -v autoconf >/dev/null 2>&1 && command -v autoheader >/dev/null 2>&1 || missing+=(autoconf)
  command -v automake >/dev/null 2>&1 || missing+=(automake)
  command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  if ! "$py" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    missing+=(python3-dev)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "setup: the DTLS build needs: ${missing[*]} (install them, e.g. apt-get install ${missing[*]})" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: the DTLS build needs: ${missing[*]} (no apt-get here: install them by hand)" >&2
    return 1
  fi
  echo "setup: installing ${missing[*]} for the DTLS build" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

if [ ! -f "$stamp" ]; then
  build_deps
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".[test,dtls]" "$dtlssocket" >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi
