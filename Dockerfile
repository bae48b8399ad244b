# syntax=docker/dockerfile:1
#
# The chartreuse image.
#
#   docker build -t ghcr.io/wiremind/chartreuse:$(cat VERSION) .   (src/image.h)
#
# /opt/chartreuse is a self-contained, relocatable tree: bin/chartreuse (RUNPATH
# $ORIGIN/../lib) and lib/ with every shared library it needs except glibc's. The migration
# Job's init container copies it into a shared emptyDir (`cp -R /opt/chartreuse/. /chartreuse/`)
# and the application container, any image with glibc >= 2.36 (Debian 12, Ubuntu 22.10+,
# python:3.x-slim-bookworm, ...), runs `/chartreuse/bin/chartreuse migrate` next to its own
# Alembic project. `chartreuse` is also on PATH here, for the `wait` init containers and for
# running the image directly.

ARG DEBIAN_IMAGE=debian:12-slim

# --- build ------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS builder

RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        make gcc libc6-dev pkg-config binutils patchelf ca-certificates \
        libfyaml-dev libyaml-dev libcurl4-openssl-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Debug info is stripped from the shipped binary (the build keeps -g for local debugging).
# `make bundle` is also what the release assets hold (`make dist`).
RUN make bundle OPTFLAGS=-O2 BUNDLE=/out/opt/chartreuse

# --- runtime ----------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE}

LABEL org.opencontainers.image.title="chartreuse" \
      org.opencontainers.image.description="Alembic database migrations for any Helm chart: Helm post-renderer and migration runner"

# The runtime libraries are also installed system-wide, so that the binary works the same
# through the symlink on PATH and copied elsewhere with its lib/ bundle.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libfyaml0 libyaml-0-2 libcurl4 libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 chartreuse \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin chartreuse

COPY --from=builder /out/opt/chartreuse /opt/chartreuse
RUN ln -s /opt/chartreuse/bin/chartreuse /usr/local/bin/chartreuse \
 && chartreuse version

USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/chartreuse"]
CMD ["--help"]
