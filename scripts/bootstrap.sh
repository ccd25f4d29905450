#!/usr/bin/env bash
# Installs uv when missing and the workspace's Python dependencies from uv.lock.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v uv >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
  echo "bootstrap: installing uv" >&2
  python3 -m pip install --quiet uv
fi
uv_cmd() { if command -v uv >/dev/null 2>&1; then uv "$@"; else python3 -m uv "$@"; fi; }
uv_cmd sync --locked --quiet
