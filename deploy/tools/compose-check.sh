#!/usr/bin/env bash
# Prints the path of compose-check (deploy/tools/compose-check), building it when needed.
#
# compose-check loads a Compose file with compose-go, the loader of Docker Compose itself, so
# compose.yaml is validated as `docker compose config` would, on machines without Docker. It is
# built once per source version with the Go toolchain and the Go module proxy, into
# ~/.cache/fragmenty/bin.
set -euo pipefail

SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/compose-check" && pwd)"
CACHE_BIN="${FRAGMENTY_CACHE_DIR:-$HOME/.cache/fragmenty}/bin"
VERSION="$(cat "$SOURCE/go.mod" "$SOURCE/go.sum" "$SOURCE/main.go" | sha256sum | cut -c1-12)"
BINARY="$CACHE_BIN/compose-check-$VERSION"

if [ ! -x "$BINARY" ]; then
  command -v go >/dev/null 2>&1 || { echo "compose-check.sh: the Go toolchain is needed" >&2; exit 1; }
  echo "compose-check.sh: building compose-check (once per version)" >&2
  mkdir -p "$CACHE_BIN"
  (cd "$SOURCE" && GOFLAGS="-mod=readonly -buildvcs=false" go build -o "$BINARY.tmp.$$" .) >&2
  mv "$BINARY.tmp.$$" "$BINARY"
fi
echo "$BINARY"
