#!/bin/sh
# Makes sure a redis-server binary is available (tests start throwaway servers from it) and
# prints its path. Installs Debian's redis-server package when missing; quiet when present.
set -eu

find_binary() {
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

. "$(dirname "$0")/ensure-package.sh"
ensure_package ensure-redis redis-server
