#!/usr/bin/env bash
# Installs moto's standalone AWS server into a virtualenv cached outside the repository,
# keyed by version, and prints the path of its moto_server executable on stdout.
# Progress goes to stderr. Every failure ends with one line
# "install-moto: <what failed>: <what to do>".
set -euo pipefail

MOTO_VERSION="${PAVE_MOTO_VERSION:-5.2.5}"
CACHE="${PAVE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pave}"
VENV="$CACHE/moto-$MOTO_VERSION/venv"
SERVER="$VENV/bin/moto_server"
LOG="$CACHE/moto-$MOTO_VERSION/install.log"

die() { echo "install-moto: $*" >&2; exit 1; }

# A venv whose pip install completed has moto_server; anything less is rebuilt.
if [ -x "$SERVER" ] && [ -f "$VENV/.pave-complete" ]; then
  echo "$SERVER"
  exit 0
fi

command -v python3 >/dev/null 2>&1 \
  || die "python3 is not installed: install Python 3.9 or newer (apt-get install python3 python3-venv) and run again"
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 \
  || die "python3 has no venv/ensurepip module: apt-get install python3-venv (or use a Python with venv) and run again"

mkdir -p "$CACHE/moto-$MOTO_VERSION"
# Concurrent test binaries may all get here at once; the lock makes the others wait
# for the first install instead of racing it.
exec 9>"$CACHE/moto-$MOTO_VERSION/.lock"
command -v flock >/dev/null 2>&1 && flock 9
if [ -x "$SERVER" ] && [ -f "$VENV/.pave-complete" ]; then
  echo "$SERVER"
  exit 0
fi

echo "install-moto: installing moto[server]==$MOTO_VERSION into $VENV" >&2
rm -rf "$VENV"
python3 -m venv "$VENV" >"$LOG" 2>&1 \
  || { tail -n 20 "$LOG" >&2; die "python3 -m venv $VENV failed (log: $LOG): install python3-venv and run again"; }
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "moto[server]==$MOTO_VERSION" >>"$LOG" 2>&1 \
  || { tail -n 20 "$LOG" >&2; die "pip install 'moto[server]==$MOTO_VERSION' failed (log: $LOG): check that PyPI is reachable (or PIP_INDEX_URL is set) and run again"; }
[ -x "$SERVER" ] || die "pip installed moto but $SERVER is missing: remove $VENV and run again"
touch "$VENV/.pave-complete"
echo "$SERVER"
