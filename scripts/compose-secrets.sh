#!/usr/bin/env bash
# Makes the secret files that docker-compose.yml mounts, in ./secrets/ (or
# the folder given as the only argument). Run it once before the first
# `docker compose up`; run it again at any time: it keeps every file that
# is still good and only makes what is missing, and certificates that run
# out within a week or no longer chain to the CA.
#
#   scripts/compose-secrets.sh            # then: docker compose up --build
#
# secrets/ is git-ignored (and .dockerignore keeps it out of the image);
# nothing here is ever committed or baked into a layer. It holds:
#
#   cursor_key, webhook_key,        base64 of 32 random bytes (the app's keys)
#   alert_webhook_key
#   database_password               48 hex digits; PostgreSQL's initial password
#                                   for the rampart role, and the app's
#   ca.pem                          a local CA for the compose services only
#   ca-key.pem                      its key: stays here, mounted nowhere
#   app.pem, app-key.pem            the app's server certificate: localhost,
#                                   app, 127.0.0.1, ::1
#   postgres.pem, postgres-key.pem  PostgreSQL's: postgres
#   redis.pem, redis-key.pem        Redis's: redis, 127.0.0.1
#
# The CA is name-constrained (X.509 nameConstraints, critical) to exactly
# those names and the loopback addresses, so even if its key leaked it could
# not vouch for any other host; certificates are ECDSA P-256, valid 90 days,
# the CA one year. It is not the development CA of `go run .`: production
# refuses certificates from that one, and the compose stack runs with
# APP_ENV=production.
#
# Modes: the folder is 0700, so other users of this machine cannot reach
# anything in it. The files the containers read are 0644, because Compose
# bind-mounts secret files with their owner and mode from this machine (its
# uid/gid/mode settings are for Swarm only) and the containers' users (65532
# for the app, 999 for PostgreSQL and Redis) are not you. PostgreSQL wants
# its key private: its entrypoint copies it to a 0600 file of its own (see
# docker-compose.yml). The CA key is 0600. Needs openssl 1.1.1 or later.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-secrets}
fail() { echo "compose-secrets: $*" >&2; exit 1; }
command -v openssl >/dev/null 2>&1 || fail "openssl is not installed"

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"

made=()

# random_file NAME COMMAND...: NAME gets COMMAND's output unless it has a value.
random_file() {
  local name=$1; shift
  [ -s "$dir/$name" ] && return 0
  "$@" >"$dir/$name.tmp"
  chmod 0644 "$dir/$name.tmp"
  mv "$dir/$name.tmp" "$dir/$name"
  made+=("$name")
}

random_file cursor_key openssl rand -base64 32
random_file webhook_key openssl rand -base64 32
random_file alert_webhook_key openssl rand -base64 32
# Hex: safe in a URL, a libpq keyword string and a shell, with 192 bits.
random_file database_password openssl rand -hex 24

ca_days=365
leaf_days=90
week=$((7 * 24 * 3600))

# The CA, remade when missing or when it ends before a certificate issued
# now would (then every certificate is remade too: none chains to the new
# one, so `leaf` below replaces them).
if ! { [ -s "$dir/ca.pem" ] && [ -s "$dir/ca-key.pem" ] &&
       openssl x509 -in "$dir/ca.pem" -noout -checkend $(((leaf_days + 7) * 24 * 3600)) >/dev/null 2>&1; }; then
  openssl req -x509 -new -sha256 -days "$ca_days" \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca-key.pem.tmp" -out "$dir/ca.pem.tmp" \
    -subj "/O=Rampart compose/CN=Rampart compose CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "nameConstraints=critical,permitted;DNS:localhost,permitted;DNS:app,permitted;DNS:postgres,permitted;DNS:redis,permitted;IP:127.0.0.0/255.0.0.0,permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" \
    2>/dev/null
  chmod 0600 "$dir/ca-key.pem.tmp"
  chmod 0644 "$dir/ca.pem.tmp"
  mv "$dir/ca-key.pem.tmp" "$dir/ca-key.pem"
  mv "$dir/ca.pem.tmp" "$dir/ca.pem"
  made+=(ca.pem ca-key.pem)
fi

# leaf NAME SUBJECT-ALT-NAMES: NAME.pem and NAME-key.pem, a server
# certificate issued by the CA, remade when missing, not issued by the
# current CA, or within a week of its end.
leaf() {
  local name=$1 sans=$2
  local cert="$dir/$name.pem" key="$dir/$name-key.pem"
  if [ -s "$cert" ] && [ -s "$key" ] &&
     openssl verify -CAfile "$dir/ca.pem" "$cert" >/dev/null 2>&1 &&
     openssl x509 -in "$cert" -noout -checkend "$week" >/dev/null 2>&1; then
    return 0
  fi
  local ext csr
  ext=$(mktemp) csr=$(mktemp)
  cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$sans
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
  openssl req -new -sha256 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$key.tmp" -out "$csr" -subj "/O=Rampart compose/CN=$name" 2>/dev/null
  openssl x509 -req -sha256 -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$leaf_days" \
    -extfile "$ext" -out "$cert.tmp" 2>/dev/null
  rm -f "$ext" "$csr"
  chmod 0644 "$key.tmp" "$cert.tmp"
  mv "$key.tmp" "$key"
  mv "$cert.tmp" "$cert"
  made+=("$name.pem" "$name-key.pem")
}

leaf app "DNS:localhost,DNS:app,IP:127.0.0.1,IP:::1"
leaf postgres "DNS:postgres"
leaf redis "DNS:redis,IP:127.0.0.1"

if [ ${#made[@]} -eq 0 ]; then
  echo "compose-secrets: $dir/ is complete; nothing made"
else
  echo "compose-secrets: made in $dir/: ${made[*]}"
fi
echo "compose-secrets: trust $dir/ca.pem to call the API, e.g. curl --cacert $dir/ca.pem https://localhost:8443/healthz"
