#!/bin/sh
# Makes sure Debian's chromium is available (the dashboard test loads the manager's page in
# headless Chromium and takes a screenshot) and prints its path. Installs the package when
# missing; quiet when present.
set -eu

find_chromium() {
    command -v chromium 2>/dev/null && return 0
    # Debian installs to /usr/bin, which a minimal PATH may lack.
    if [ -x /usr/bin/chromium ]; then
        echo /usr/bin/chromium
        return 0
    fi
    return 1
}

if path=$(find_chromium); then
    echo "$path"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "ensure-chromium: chromium is missing and we are not root (no sudo either);" >&2
    echo "ensure-chromium: install Debian's chromium package by hand" >&2
    exit 1
fi

echo "ensure-chromium: installing chromium from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
# Output of apt goes to stderr so that stdout carries only the binary's path.
$as_root apt-get update -qq >&2
$as_root apt-get install -y -qq --no-install-recommends chromium >&2

if path=$(find_chromium); then
    echo "$path"
else
    echo "ensure-chromium: chromium still not found after installing the package" >&2
    exit 1
fi
