#!/usr/bin/env bash
# `make docker_build`: static binaries of every service (cargo rebuilds only what changed), then
# one FROM-scratch image per service (docker/Dockerfile.scratch) whose binary differs from the
# image's (label redline.binary-sha256), then a check that each new image's binary runs in its
# empty root. A cold build of all five takes about 11 minutes on 2 cores; with nothing changed,
# seconds.
#
# Environment: SERVICES (default: all five), IMAGE_PREFIX (redline/), TAG (latest),
# CARGO (cargo). Static-pie binaries come from glibc's static libraries with
# `-C target-feature=+crt-static`; the explicit --target keeps them in
# $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/ (target/ unless set), apart from the debug builds.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVICES=${SERVICES:-"collector health-checker liquidator manager devnet"}
IMAGE_PREFIX=${IMAGE_PREFIX:-redline/}
TAG=${TAG:-latest}
CARGO=${CARGO:-cargo}
TARGET=x86_64-unknown-linux-gnu
# Where cargo puts what it builds: a relative CARGO_TARGET_DIR is relative to the workspace.
TARGET_DIR=${CARGO_TARGET_DIR:-target}

if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "docker_build: the Docker daemon does not answer (is it running, may this user use it?)" >&2
    exit 1
fi

# Every service's binary, whatever SERVICES asks for: cargo unifies the dependencies' features
# over the binaries built together, so building another subset would rebuild the shared
# dependencies each time; with all five, a build with nothing changed takes seconds.
ALL_SERVICES="collector health-checker liquidator manager devnet"
bins=()
for service in $ALL_SERVICES; do bins+=(--bin "$service"); done
echo "docker_build: building static binaries: $ALL_SERVICES (only what changed; a cold build takes about 11 minutes on 2 cores)"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    "$CARGO" build --release --target "$TARGET" "${bins[@]}"

# A build context holding only what the images contain: sending the workspace (target/ is
# gigabytes) to the daemon would take longer than the build.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/bin" "$context/rootfs/tmp" "$context/rootfs/etc/ssl/certs"
chmod 1777 "$context/rootfs/tmp"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$context/rootfs/etc/ssl/certs/"
else
    echo "docker_build: no /etc/ssl/certs/ca-certificates.crt here; images get no CA roots" >&2
    : > "$context/rootfs/etc/ssl/certs/ca-certificates.crt"
fi

for service in $SERVICES; do
    binary="$TARGET_DIR/$TARGET/release/$service"
    if ! LC_ALL=C readelf -h "$binary" >/dev/null 2>&1; then
        echo "docker_build: $binary is missing or not an ELF binary" >&2
        exit 1
    fi
    # A dynamic binary has a PT_INTERP (program interpreter) segment; it would not start in an
    # empty root.
    if LC_ALL=C readelf -l "$binary" 2>/dev/null | grep -q 'Requesting program interpreter'; then
        echo "docker_build: $binary is dynamically linked; it cannot run FROM scratch" >&2
        exit 1
    fi
    # Debug info is most of a release binary here (76 of a manager binary's 92 MB); symbols stay,
    # so backtraces still name functions.
    if command -v strip >/dev/null 2>&1; then
        strip --strip-debug -o "$context/bin/$service" "$binary"
    else
        cp "$binary" "$context/bin/$service"
    fi
done

for service in $SERVICES; do
    image="${IMAGE_PREFIX}${service}:${TAG}"
    # An image is rebuilt only when its binary changed: the image carries the binary's digest.
    digest=$(sha256sum "$context/bin/$service" | cut -d' ' -f1)
    current=$(docker image inspect --format '{{index .Config.Labels "redline.binary-sha256"}}' "$image" 2>/dev/null || true)
    if [ "$current" = "$digest" ]; then
        echo "docker_build: $image is up to date"
        continue
    fi
    echo "docker_build: $image"
    # The classic builder: FROM scratch needs nothing BuildKit adds, and buildx may be absent.
    # Its output (a deprecation notice included) is shown only when the build fails.
    if ! log=$(DOCKER_BUILDKIT=0 docker build -f docker/Dockerfile.scratch \
        --label "redline.binary-sha256=$digest" \
        --build-arg SERVICE="$service" -t "$image" "$context" 2>&1); then
        echo "$log" >&2
        echo "docker_build: building $image failed" >&2
        exit 1
    fi
    # The binary must start in the empty root: `--help` parses the CLI and exits 0.
    if ! docker run --rm --network none "$image" --help >/dev/null; then
        echo "docker_build: $image does not start (docker run $image --help failed)" >&2
        exit 1
    fi
done

docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep "^${IMAGE_PREFIX}" | sort
