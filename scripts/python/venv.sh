#!/usr/bin/env bash
# Create (once) the cached Python venv with the pinned omnibase-infra that the
# interop tests and interop/python/onex_nodes.py run on, and print its python.
#
#   PY=$(scripts/python/venv.sh)     # last stdout line: .../bin/python
#
# Interpreter, first match wins (CPython >= 3.12 only):
#   $ONEX_PYTHON; the newest $(pyenv root)/versions/3.13.* or 3.12.* (when pyenv
#   is on PATH or ~/.pyenv exists); python3.13, python3.12 on PATH; python3.
# Venv: ${ONEX_CACHE_DIR:-$HOME/.cache/onex-fleet}/python/venv-<key>, where
#   <key> is the first 12 hex of sha256(requirements.lock + interpreter
#   version), so editing the lock builds a new venv. ONEX_PYTHON_VENV
#   overrides the location (that venv is rebuilt in place when the key moves).
# A stamp file is written only after every step succeeded; with the stamp in
# place this is a no-op. Concurrent callers serialise on a flock in the cache
# dir. Progress goes to stderr with a [python] prefix.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCK="$ROOT/interop/python/requirements.lock"
CACHE="${ONEX_CACHE_DIR:-$HOME/.cache/onex-fleet}/python"
STAMP_NAME=".onex-venv-stamp"

log() { printf '[python] %s\n' "$*" >&2; }
die() { printf '[python] %s\n' "$*" >&2; exit 1; }

[[ -r "$LOCK" ]] || die "lock file not found: $LOCK"

# py_info PY: print "X.Y.Z" and the real executable (a pyenv shim resolves to
# the interpreter behind it); exit 3 unless PY is CPython >= 3.12.
py_info() {
  "$1" -c 'import platform, sys
ok = sys.implementation.name == "cpython" and sys.version_info >= (3, 12)
print(platform.python_version())
print(sys.executable)
sys.exit(0 if ok else 3)' 2>/dev/null
}

PY=""
PYVER=""
try_python() { # try_python CMD: accept CMD if it is a usable CPython >= 3.12
  local cand="$1" path info
  path="$(command -v -- "$cand" 2>/dev/null)" || return 1
  info="$(py_info "$path")" || return 1
  PYVER="$(sed -n 1p <<<"$info")"
  PY="$(sed -n 2p <<<"$info")"
  [[ -n "$PY" ]] || PY="$path"
}

find_python() {
  if [[ -n "${ONEX_PYTHON:-}" ]]; then
    local path info rc=0
    path="$(command -v -- "$ONEX_PYTHON" 2>/dev/null)" ||
      die "python: ONEX_PYTHON=$ONEX_PYTHON is not an executable"
    info="$(py_info "$path")" || rc=$?
    if ((rc != 0)); then
      [[ -n "$info" ]] || die "python: ONEX_PYTHON=$ONEX_PYTHON does not run"
      die "python: ONEX_PYTHON=$ONEX_PYTHON is Python $(sed -n 1p <<<"$info"), need CPython >= 3.12 (install one, e.g. pyenv install 3.12, or point ONEX_PYTHON at one)"
    fi
    PYVER="$(sed -n 1p <<<"$info")"
    PY="$(sed -n 2p <<<"$info")"
    [[ -n "$PY" ]] || PY="$path"
    return 0
  fi

  local pyenv_root=""
  if command -v pyenv >/dev/null 2>&1; then
    pyenv_root="$(pyenv root 2>/dev/null || true)"
  elif [[ -d "$HOME/.pyenv" ]]; then
    pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  fi
  if [[ -n "$pyenv_root" && -d "$pyenv_root/versions" ]]; then
    local v
    # Plain X.Y.Z releases only (no 3.13.0t, 3.13-dev, ...), newest first.
    while IFS= read -r v; do
      try_python "$pyenv_root/versions/$v/bin/python3" && return 0
    done < <(find "$pyenv_root/versions" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null |
      grep -E '^3\.1[23]\.[0-9]+$' | sort -rV)
  fi

  # pyenv shims for an inactive version exist on PATH but fail to run;
  # try_python runs each candidate, so those are skipped.
  try_python python3.13 && return 0
  try_python python3.12 && return 0
  try_python python3 && return 0
  die "python: no CPython >= 3.12 found (install one, e.g. pyenv install 3.12, or set ONEX_PYTHON)"
}

find_python

KEY="$({ cat "$LOCK"; printf '%s\n' "$PYVER"; } | sha256sum | cut -c1-12)"
if [[ -n "${ONEX_PYTHON_VENV:-}" ]]; then
  VENV="$ONEX_PYTHON_VENV"
  LOCKFILE="$CACHE/venv-override-$(printf '%s' "$VENV" | sha256sum | cut -c1-12).lock"
else
  VENV="$CACHE/venv-$KEY"
  LOCKFILE="$CACHE/venv-$KEY.lock"
fi
STAMP="$VENV/$STAMP_NAME"
STAMP_TEXT="$KEY python=$PYVER"

ready() { # the stamp matches this key and the venv's python still runs
  [[ -f "$STAMP" && "$(head -n1 "$STAMP" 2>/dev/null)" == "$STAMP_TEXT" ]] &&
    "$VENV/bin/python" -c '' 2>/dev/null
}

if ready; then
  printf '%s\n' "$VENV/bin/python"
  exit 0
fi

mkdir -p "$CACHE"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$LOCKFILE"
  if ! flock -n 9; then
    log "waiting for another venv.sh building $VENV"
    flock 9
  fi
else
  log "flock not found; building without a lock"
fi

if ready; then # another caller finished it while we waited
  printf '%s\n' "$VENV/bin/python"
  exit 0
fi

t0=$SECONDS
log "building $VENV with $PY (Python $PYVER) from ${LOCK#"$ROOT"/}"
rm -rf -- "$VENV"
"$PY" -m venv "$VENV" >&2 || die "could not create a venv with $PY (on Debian/Ubuntu: apt-get install python3-venv)"
VPY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# The pip bundled with older CPython (23.x) fails to resolve the
# opentelemetry pins, so upgrade pip before anything else.
log "upgrading pip"
"$VPY" -m pip install --quiet --upgrade 'pip>=26' >&2
log "installing $(grep -cvE '^[[:space:]]*(#|$)' "$LOCK") pinned distributions (about a minute)"
"$VPY" -m pip install --quiet -r "$LOCK" >&2
check_out="$("$VPY" -m pip check 2>&1)" || { printf '%s\n' "$check_out" >&2; die "pip check failed in $VENV"; }
# Nothing beyond the lock may have been pulled in.
if ! diff <(grep -vE '^[[:space:]]*(#|$)' "$LOCK" | LC_ALL=C sort) \
  <("$VPY" -m pip freeze --exclude pip --exclude setuptools --exclude wheel |
    awk -F'==' '{n=tolower($1); gsub(/[-_.]+/,"-",n); print n"=="$2}' | LC_ALL=C sort) >&2; then
  die "installed set differs from ${LOCK#"$ROOT"/} (diff above: < lock, > installed)"
fi
log "smoke import"
"$VPY" -c 'import omnibase_infra
from omnibase_infra.mixins import MixinNodeIntrospection
from omnibase_infra.event_bus.event_bus_kafka import EventBusKafka' >&2 ||
  die "smoke import of omnibase_infra failed in $VENV"
printf '%s\n' "$STAMP_TEXT" >"$STAMP.tmp" && mv -f "$STAMP.tmp" "$STAMP"
log "ready in $((SECONDS - t0))s: $VPY"
printf '%s\n' "$VPY"
