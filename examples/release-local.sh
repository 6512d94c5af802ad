#!/usr/bin/env bash
# examples/github-actions-release.yml on one machine, with podman or docker: the same builder commands.
#
#   build     each ABI in its own container: `builder android --abi ABI` (libtorch, the release's JNI library,
#             classes.jar, a one-ABI AAR and Maven folder), then `builder package part` stages the ABI;
#   assemble  one container: `builder assemble --publication` joins the parts with the Java side, POM and sources
#             jar of a per-ABI build, at the version one `builder android` of all the ABIs names: that build's
#             AAR (the same bytes) and Maven folder, in $OUT/dist.
#
# Every container sees this machine's folders at the same paths (`builder docker`), and every ABI builds in the
# same output folder ($OUT/out): the linker hashes paths into build-ids, so the same paths give the same bytes.
#
#   RELEASE=v1.13.1 ABIS="arm64-v8a x86_64" IMAGE=builder-android:dev OUT=release \
#     examples/release-local.sh [more `builder android` arguments, e.g. --cache sccache]
# Environment: ENGINE (auto|podman|docker), BUILDER (how to run builder here; default `builder`),
# DOCKER_ARGS (more `builder docker` options, e.g. "--network none --env SOURCE_DATE_EPOCH=1700000000"),
# PART_ARGS (more `builder package part`/`assemble` options, e.g. --system-lib for a stand-in NDK).
set -euo pipefail

RELEASE=${RELEASE:-v1.13.1}
ABIS=${ABIS:-"arm64-v8a armeabi-v7a x86 x86_64"}
IMAGE=${IMAGE:-builder-android:dev}
ENGINE=${ENGINE:-auto}
OUT=$(realpath -m "${OUT:-release}")
read -r -a BUILDER <<< "${BUILDER:-builder}"
read -r -a DOCKER_ARGS <<< "${DOCKER_ARGS:-}"
read -r -a PART_ARGS <<< "${PART_ARGS:-}"
# The libraries v1.13.1's AAR ships beside the JNI library (android/pytorch_android: fbjni, libc++_shared).
read -r -a LIB_ARGS <<< "${LIB_ARGS:---runtime-lib libfbjni.so --shared-stl}"

in_image() { "${BUILDER[@]}" docker --engine "$ENGINE" --image "$IMAGE" "${DOCKER_ARGS[@]}" --run -- "$@"; }

abi_args=()
for abi in $ABIS; do abi_args+=(--abi "$abi"); done
mkdir -p "$OUT/out" "$OUT/parts" "$OUT/dist"

parts=()
for abi in $ABIS; do                                   # the matrix: one container per ABI
  echo "== $abi"
  in_image android --tag "$RELEASE" --abi "$abi" --out "$OUT/out" "$@"
  jni=$(ls -td "$OUT/out/build/android-$abi-"*/jni/aar-input | head -n 1)
  rm -rf "$OUT/parts/$abi"
  in_image package part --abi "$abi" --build-dir "$jni" --output "$OUT/parts/$abi" "${LIB_ARGS[@]}" "${PART_ARGS[@]}"
  parts+=(--parts "$OUT/parts/$abi")
done

# The version one build of all the ABIs publishes: its plan names the AAR (nothing is built; the plan reads
# the release's tree, which the builds fetched).
aar=$(in_image android --tag "$RELEASE" "${abi_args[@]}" --out "$OUT/out" "$@" --json \
      | python3 -c 'import json,sys; t=sys.stdin.read(); plan=json.JSONDecoder().raw_decode(t[t.index("{"):])[0]
print(*[s["title"].removeprefix("write ") for s in plan["steps"] if s["title"].endswith(".aar")])')
artifact_version=${aar%.aar}

echo "== assemble $aar"
pom=$(ls -t "$OUT"/out/maven/*/*/*/*/*.pom | head -n 1)     # maven/org/pytorch/<artifact>/<version>/
in_image assemble "${parts[@]}" --publication "$(dirname "$pom")" --version "${artifact_version#*-}" \
  --out "$OUT/dist" "${PART_ARGS[@]}"
ls -l "$OUT/dist/$aar"
sha256sum "$OUT/dist/$aar"
