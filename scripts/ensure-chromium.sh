#!/bin/sh
# Makes sure Debian's chromium is available (the dashboard test loads the manager's page in
# headless Chromium and takes a screenshot) and prints its path. Installs the package when
# missing; quiet when present.
set -eu

find_binary() {
    command -v chromium 2>/dev/null && return 0
    # Debian installs to /usr/bin, which a minimal PATH may lack.
    if [ -x /usr/bin/chromium ]; then
        echo /usr/bin/chromium
        return 0
    fi
    return 1
}

. "$(dirname "$0")/ensure-package.sh"
ensure_package ensure-chromium chromium
