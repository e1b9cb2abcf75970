# Sourced by the ensure-*.sh scripts. `ensure_package SCRIPT PACKAGE` prints the path the
# caller's `find_binary` prints; when that finds nothing, installs Debian's PACKAGE (as root, or
# through sudo) and tries once more. SCRIPT names the caller in messages, which go to stderr so
# that stdout carries only the binary's path.

ensure_package() {
    script=$1
    package=$2

    if path=$(find_binary); then
        echo "$path"
        return 0
    fi

    if [ "$(id -u)" -eq 0 ]; then
        as_root=""
    elif command -v sudo >/dev/null 2>&1; then
        as_root="sudo"
    else
        echo "$script: $package is missing and we are not root (no sudo either);" >&2
        echo "$script: install Debian's $package package by hand" >&2
        return 1
    fi

    echo "$script: installing $package from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    $as_root apt-get update -qq >&2
    $as_root apt-get install -y -qq --no-install-recommends "$package" >&2

    if path=$(find_binary); then
        echo "$path"
    else
        echo "$script: $package still not found after installing the package" >&2
        return 1
    fi
}
