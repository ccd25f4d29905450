#!/usr/bin/env bash
# Prints the path of a terraform binary, building one when none is installed.
#
# A terraform already on PATH is used as it is. Otherwise Terraform v1.5.7 (the last MPL-licensed
# release) is built from source with `go install` through the Go module proxy, once per machine,
# into ~/.cache/fragmenty/bin. Only `terraform fmt` (which needs no providers) relies on it in tests.
#
#   deploy/tools/terraform.sh            path of a terraform binary (stdout), progress on stderr
#   FRAGMENTY_TERRAFORM_BUILD=1 ...      ignore PATH and use (or build) the cached v1.5.7
set -euo pipefail

VERSION="v1.5.7"
CACHE_BIN="${FRAGMENTY_CACHE_DIR:-$HOME/.cache/fragmenty}/bin"
CACHED="$CACHE_BIN/terraform-$VERSION"

if [ "${FRAGMENTY_TERRAFORM_BUILD:-0}" != "1" ] && command -v terraform >/dev/null 2>&1; then
  command -v terraform
  exit 0
fi
if [ -x "$CACHED" ]; then
  echo "$CACHED"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "terraform.sh: no terraform and no Go toolchain to build one" >&2; exit 1; }

BUILD_DIR="$(mktemp -d)"
trap 'rm -rf "$BUILD_DIR"' EXIT
echo "terraform.sh: building terraform $VERSION with go install (once per machine)" >&2
GOBIN="$BUILD_DIR" GOFLAGS=-buildvcs=false go install "github.com/hashicorp/terraform@$VERSION" >&2
mkdir -p "$CACHE_BIN"
# Rename into place so a concurrent run never sees a half-written binary.
cp "$BUILD_DIR/terraform" "$CACHED.tmp.$$"
mv "$CACHED.tmp.$$" "$CACHED"
echo "$CACHED"
