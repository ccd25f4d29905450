#!/usr/bin/env bash
# Builds FerretDB 1.24.2 from its Go module, once per machine, into a cache folder.
#
# A plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds a binary that
# panics at start: the module lacks the generated build/version/version.txt that FerretDB's own
# build writes. So we fetch the very same module through the Go module proxy, add that one file,
# and build the same command from it.
set -euo pipefail

FERRETDB_VERSION="${FERRETDB_VERSION:-v1.24.2}"
CACHE_DIR="${FRAGMENTY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fragmenty}"
BIN="$CACHE_DIR/bin/ferretdb-$FERRETDB_VERSION"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "build-ferretdb: Go is not installed; FerretDB cannot be built (install Go or set FRAGMENTY_MONGODB_URL)" >&2
  exit 1
fi

echo "build-ferretdb: building FerretDB $FERRETDB_VERSION (once per machine, a few minutes)" >&2
module_dir=$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$module_dir" ] || [ ! -d "$module_dir" ]; then
  echo "build-ferretdb: could not download the FerretDB module from the Go module proxy" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$module_dir/." "$work/"
chmod -R u+w "$work"
echo "$FERRETDB_VERSION" > "$work/build/version/version.txt"
mkdir -p "$CACHE_DIR/bin"
(cd "$work" && CGO_ENABLED=0 go build -trimpath -o "$BIN.tmp" ./cmd/ferretdb)
mv "$BIN.tmp" "$BIN"
echo "$BIN"
