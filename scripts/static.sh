#!/usr/bin/env bash
# Static analysis of the module: gofmt, go vet, staticcheck and gosec, each
# at a pinned version fetched through the Go module proxy (`go run
# pkg@version` builds it in the module cache; nothing is added to go.mod).
# Any finding fails the script.
#
#   scripts/static.sh              # everything
#   scripts/static.sh gosec        # one step: gofmt, vet, staticcheck or gosec
#
# Exclusions are written where they apply, with the reason, never as a
# switch here:
#   - staticcheck: `//lint:ignore CHECK reason` on the line before;
#   - gosec: `// #nosec Gxxx -- reason` (the comment must start with #nosec;
#     on a const block it covers the block).
# The one exclusion here: gosec skips testdata/, which holds code that is
# wrong on purpose (the SQL guard's test module concatenates SQL so that
# TestSQLGuardFindsDynamicSQL can prove the guard finds it).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.26.10}"

STATICCHECK_VERSION=v0.8.2 # honnef.co/go/tools
GOSEC_VERSION=v2.30.0      # github.com/securego/gosec/v2

only="${1:-}"
if [ -n "$only" ] && ! [[ "$only" =~ ^(gofmt|vet|staticcheck|gosec)$ ]]; then
  echo "usage: $0 [gofmt|vet|staticcheck|gosec]" >&2
  exit 2
fi
run() { [ -z "$only" ] || [ "$only" = "$1" ]; }

if run gofmt; then
  echo "== gofmt"
  unformatted=$(gofmt -l $(git ls-files '*.go' ':!:testdata/**' ':!:**/testdata/**'))
  if [ -n "$unformatted" ]; then
    echo "FAIL: gofmt would change:" >&2
    echo "$unformatted" >&2
    exit 1
  fi
fi

if run vet; then
  echo "== go vet"
  go vet ./...
fi

if run staticcheck; then
  echo "== staticcheck $STATICCHECK_VERSION"
  go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...
fi

if run gosec; then
  echo "== gosec $GOSEC_VERSION"
  go run "github.com/securego/gosec/v2/cmd/gosec@$GOSEC_VERSION" -quiet -fmt text -exclude-dir=testdata ./...
fi

echo "static: clean"
