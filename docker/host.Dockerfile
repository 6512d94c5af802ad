# syntax=docker/dockerfile:1
#
# builder's host (Linux x86_64) build image: GCC and Clang/LLD, CMake and Ninja (pinned from
# PyPI), sccache (sha256-verified) and builder itself, installed from this repository.
# Use it for `builder host ...` builds and for model export/verification jobs.
#
# Build from the repository root:
#   docker build -f docker/host.Dockerfile -t builder-host:dev .

FROM python:3.11.9-slim-bookworm

ARG SCCACHE_VERSION=0.8.2
ARG SCCACHE_SHA256=ecda4ddc89a49f1ec6f35bdce5ecbf6f205b399a680d11119d4ce9f6d962104e
ARG CMAKE_VERSION=3.27.9
ARG NINJA_VERSION=1.11.1.1
ARG BUILDER_UID=1000

ENV BUILDER_CACHE_DIR=/cache/builder \
    XDG_CACHE_HOME=/cache \
    SCCACHE_DIR=/cache/sccache \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Debian packages are not version-pinned on purpose (see android.Dockerfile): the base image
# tag pins the Debian release; CMake, Ninja and sccache are pinned exactly.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential ca-certificates clang curl git lld patch unzip \
 && rm -rf /var/lib/apt/lists/*

RUN curl -fsSLo /tmp/sccache.tar.gz \
      "https://github.com/mozilla/sccache/releases/download/v${SCCACHE_VERSION}/sccache-v${SCCACHE_VERSION}-x86_64-unknown-linux-musl.tar.gz" \
 && echo "${SCCACHE_SHA256}  /tmp/sccache.tar.gz" | sha256sum -c - \
 && tar -xzf /tmp/sccache.tar.gz -C /usr/local/bin --strip-components=1 \
      "sccache-v${SCCACHE_VERSION}-x86_64-unknown-linux-musl/sccache" \
 && chmod 0755 /usr/local/bin/sccache \
 && rm /tmp/sccache.tar.gz

RUN pip install --no-cache-dir "cmake==${CMAKE_VERSION}" "ninja==${NINJA_VERSION}"

RUN useradd --create-home --uid "${BUILDER_UID}" --shell /bin/bash builder \
 && mkdir -p /cache/builder /cache/sccache /work \
 && chown -R builder:builder /cache /work

COPY . /tmp/builder-src
RUN pip install --no-cache-dir /tmp/builder-src && rm -rf /tmp/builder-src

USER ${BUILDER_UID}
VOLUME ["/cache/builder", "/cache/sccache"]
WORKDIR /work
CMD ["bash"]
