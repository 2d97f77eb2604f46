#!/usr/bin/env bash
# Creates .venv with a Python 3.10 interpreter (TFX 1.16 requires <3.11) and
# installs the project (pyproject.toml, editable through PEP 660) under the
# committed constraints. Idempotent: a venv whose install stamp matches
# pyproject.toml, setup.py and constraints.txt is left as it is.
#
# The install goes through uv (pinned in constraints.txt): it downloads in
# parallel and keeps every wheel it fetched or built in its cache outside the
# checkout (~/.cache/uv, or UV_CACHE_DIR), so a fresh clone on a machine that
# installed once before links the ~1.5 GB of TFX wheels instead of fetching
# and unpacking them again (measured on a clean clone here: pip 165 s, uv from
# its cache 48-62 s, most of it compiling bytecode, which imports need where
# PYTHONDONTWRITEBYTECODE is set). The result is the same locked set of
# packages, checked by `pip check`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
STAMP="$VENV/.install-stamp"
WANT="$(cat pyproject.toml setup.py constraints.txt | sha256sum | cut -d' ' -f1)"

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  exit 0
fi

find_python310() {
  local candidate
  for candidate in python3.10 "$HOME/.pyenv/versions/3.10.13/bin/python3.10"; do
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | sort -V | tail -1 || true)"
    if [[ -n "$version" ]]; then
      echo "$(pyenv root)/versions/$version/bin/python3.10"; return 0
    fi
  fi
  return 1
}

if ! PY="$(find_python310)"; then
  cat >&2 <<'MSG'
ERROR: no Python 3.10 interpreter found. TFX 1.16 supports only Python 3.10
(requires-python <3.11). Install one, then re-run this command:
  - pyenv:   pyenv install 3.10.13
  - Debian:  apt-get install python3.10 python3.10-venv (or deadsnakes PPA on Ubuntu)
  - or put any python3.10 on PATH.
MSG
  exit 1
fi

echo "Creating $VENV with $PY ($("$PY" --version))"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet -c constraints.txt uv
# The machine's CA bundle, as pip uses it (a registry behind a TLS proxy).
UV_NATIVE_TLS=1 "$VENV/bin/uv" pip install --quiet --compile-bytecode --python "$VENV/bin/python" \
  -c constraints.txt -e '.[test,app]'
"$VENV/bin/pip" check
echo "$WANT" > "$STAMP"
echo "Environment ready: $VENV"
