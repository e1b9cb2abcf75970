#!/bin/sh
# Makes sure a redis-server binary is available (tests start throwaway servers from it) and
# prints its path. Installs Debian's redis-server package when missing; quiet when present.
set -eu

find_redis() {
    command -v redis-server 2>/dev/null && return 0
    # Debian installs to /usr/bin, which a minimal PATH may lack.
    for candidate in /usr/bin/redis-server /usr/local/bin/redis-server; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if path=$(find_redis); then
    echo "$path"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "ensure-redis: redis-server is missing and we are not root (no sudo either);" >&2
    echo "ensure-redis: install Debian's redis-server package by hand" >&2
    exit 1
fi

echo "ensure-redis: installing redis-server from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
# Output of apt goes to stderr so that stdout carries only the binary's path.
$as_root apt-get update -qq >&2
$as_root apt-get install -y -qq --no-install-recommends redis-server >&2

if path=$(find_redis); then
    echo "$path"
else
    echo "ensure-redis: redis-server still not found after installing the package" >&2
    exit 1
fi
