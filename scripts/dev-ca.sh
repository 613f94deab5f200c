#!/usr/bin/env bash
# Makes (or shows) the local development CA under ${APP_DATA_DIR:-data}/tls.
# It installs nothing: point curl at it with --cacert, or import it into a
# browser profile you use for development. It can only vouch for localhost,
# 127.0.0.0/8 and ::1 (X.509 name constraints).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run . dev ca
