#!/usr/bin/env bash
# Runs every benchmark in benchmarks/; each prints one JSON line whose "bench" field names it.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv_cmd() { if command -v uv >/dev/null 2>&1; then uv "$@"; else python3 -m uv "$@"; fi; }

status=0
shopt -s nullglob
for bench in benchmarks/*.py; do
  case "$(basename "$bench")" in _*) continue ;; esac
  echo "bench: $bench" >&2
  if ! uv_cmd run python "$bench"; then
    echo "bench: $bench failed" >&2
    status=1
  fi
done
exit $status
