# The Rampart container image: a static binary on a distroless base, run as
# a non-root user, with nothing secret in any layer.
#
#   docker build --build-arg VERSION=v1.2.3 -t rampart:v1.2.3 .
#   (or: docker compose up --build, see docker-compose.yml and the README)
#
# Secrets never come in through the build: there is no secret ARG or ENV,
# and .dockerignore keeps data/, secrets/, .env files, keys and .git out of
# the build context. At run time they are files (APP_SECRETS=file:DIR,
# e.g. Docker or Kubernetes secrets under /run/secrets). Base images are
# pinned by version, the runtime one also by digest (it has no version
# tags); Renovate or Dependabot can move them. container_test.go checks this
# file: its stages, user, arguments, pins and CGO_ENABLED=0.

# --- build: the Go toolchain go.mod asks for, never used at run time -------
FROM golang:1.26.10-bookworm AS build

# The image's Go is the one go.mod names: no toolchain download, no cgo
# (a static binary that needs no libc in the runtime image).
ENV CGO_ENABLED=0 GOTOOLCHAIN=local

WORKDIR /src
# Modules first, so that this layer is reused while go.mod and go.sum stay
# the same. Both are checked against go.sum (and the checksum database).
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download && go mod verify

COPY . .

# VERSION is the only build argument: a version string, shown by
# `rampart version` and logged at start-up. Never pass a secret as an ARG:
# build arguments stay in the image's history.
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X github.com/rampart-go/rampart/app.Version=${VERSION}" \
      -o /out/rampart . \
 && go build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" \
      -o /out/healthcheck ./scripts/healthcheck \
 && mkdir -m 0700 /out/data

# --- runtime: no shell, no package manager, CA roots and tzdata only ------
# gcr.io/distroless/static-debian12:nonroot as of 2026-08-26; to move it:
#   crane digest gcr.io/distroless/static-debian12:nonroot
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab

ARG VERSION=dev
LABEL org.opencontainers.image.title="rampart" \
      org.opencontainers.image.description="Rampart: a secure-by-default REST API starter" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/rampart /usr/local/bin/rampart
# The container health probe (scripts/healthcheck): the image has no curl.
COPY --from=build /out/healthcheck /usr/local/bin/healthcheck
# The data folder belongs to the app's user; it is the only place the app
# writes (ACME cache; the SQLite file when no PostgreSQL URL is given), so
# the root filesystem can be mounted read-only.
COPY --from=build --chown=65532:65532 /out/data /data

# distroless "nonroot": uid and gid 65532, by number so that Kubernetes'
# runAsNonRoot can check it without a passwd lookup.
USER 65532:65532

# Not secrets: where to listen (every interface of the container: the
# network namespace is the boundary) and where the data folder is. The rest
# of the configuration comes at run time (README, "Configuration").
ENV APP_ADDR=0.0.0.0:8443 APP_DATA_DIR=/data

# HTTPS only: there is no plain-HTTP listener. Metrics stay on the
# container's loopback (APP_METRICS_ADDR) unless configured with mTLS.
EXPOSE 8443
VOLUME ["/data"]

ENTRYPOINT ["/usr/local/bin/rampart"]
CMD ["serve"]
