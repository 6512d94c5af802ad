# syntax=docker/dockerfile:1
#
# builder's Android build image: JDK 17, Android SDK command-line tools (sha256-verified),
# a pinned NDK installed by `builder ndk install` (which verifies Google's pinned checksums,
# see builder/data/ndk_archives.toml), CMake and Ninja (pinned from PyPI), sccache
# (sha256-verified) and builder itself, installed from this repository.
#
# Build from the repository root (the build context must be the repo, not docker/):
#   docker build -f docker/android.Dockerfile -t builder-android:dev .
# See docker/README.md for running it.

FROM python:3.11.9-slim-bookworm

ARG NDK_VERSION=r21e
ARG CMDLINE_TOOLS_BUILD=11076708
# cmdline-tools 12.0 for Linux, as published in Google's repository2 metadata.
ARG CMDLINE_TOOLS_SHA256=2d2d50857e4eb553af5a6dc3ad507a17adf43d115264b1afc116f95c92e5e258
ARG SDK_PACKAGES="platform-tools platforms;android-34 build-tools;34.0.0"
ARG SCCACHE_VERSION=0.8.2
ARG SCCACHE_SHA256=ecda4ddc89a49f1ec6f35bdce5ecbf6f205b399a680d11119d4ce9f6d962104e
ARG CMAKE_VERSION=3.27.9
ARG NINJA_VERSION=1.11.1.1
ARG BUILDER_UID=1000

ENV ANDROID_HOME=/opt/android-sdk \
    ANDROID_SDK_ROOT=/opt/android-sdk \
    JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 \
    BUILDER_CACHE_DIR=/cache/builder \
    XDG_CACHE_HOME=/cache \
    SCCACHE_DIR=/cache/sccache \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
ENV PATH=/opt/android-sdk/cmdline-tools/latest/bin:/opt/android-sdk/platform-tools:${PATH}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Debian packages are not version-pinned on purpose: bookworm drops superseded versions when
# security updates land, so exact pins stop building. The base image tag pins the release;
# every toolchain that decides build output (NDK, CMake, Ninja, sccache) is pinned below.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates curl git openjdk-17-jdk-headless patch unzip \
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
 && mkdir -p /opt/android-sdk /cache/builder /cache/sccache /work \
 && chown -R builder:builder /opt/android-sdk /cache /work

COPY . /tmp/builder-src
RUN pip install --no-cache-dir /tmp/builder-src && rm -rf /tmp/builder-src

USER ${BUILDER_UID}

RUN curl -fsSLo /tmp/cmdline-tools.zip \
      "https://dl.google.com/android/repository/commandlinetools-linux-${CMDLINE_TOOLS_BUILD}_latest.zip" \
 && echo "${CMDLINE_TOOLS_SHA256}  /tmp/cmdline-tools.zip" | sha256sum -c - \
 && mkdir -p /opt/android-sdk/cmdline-tools \
 && unzip -q /tmp/cmdline-tools.zip -d /tmp/cmdline-tools \
 && mv /tmp/cmdline-tools/cmdline-tools /opt/android-sdk/cmdline-tools/latest \
 && rm -rf /tmp/cmdline-tools /tmp/cmdline-tools.zip

# sdkmanager checks its own downloads against Google's repository metadata.
RUN (yes || true) | sdkmanager --licenses > /dev/null \
 && sdkmanager --install ${SDK_PACKAGES} > /dev/null

# The NDK: downloaded, checked against the checksums pinned in builder/data/ndk_archives.toml,
# unpacked into /opt/android-sdk/ndk/<revision>, where builder (and Gradle) find it.
RUN builder ndk install "${NDK_VERSION}" --sdk /opt/android-sdk \
 && rm -rf /cache/builder/*

VOLUME ["/cache/builder", "/cache/sccache"]
WORKDIR /work
CMD ["bash"]
