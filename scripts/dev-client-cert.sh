#!/usr/bin/env bash
# Issues a client certificate for the mTLS (service) listener from the local
# development CA:  scripts/dev-client-cert.sh NAME [--days N] [--out DIR]
# NAME becomes the service principal (the certificate's Common Name).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: scripts/dev-client-cert.sh NAME [--days N] [--out DIR]}
shift
exec go run . dev client-cert --name "$name" "$@"
