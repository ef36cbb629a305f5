#!/usr/bin/env bash
# Install Debian's `chromium` for tests/integration/test_report_browser.py, which renders the page
# `rpv2 report` writes in headless Chromium (screenshot, DOM dump, script errors). `rpv2 report` itself
# needs no browser: only its test does.
#
# Idempotent: if a chromium binary already runs, nothing is done. Uses apt-get (root or sudo).
# Environment: RPV2_CHROMIUM_SKIP_APT=1 to only report whether a browser is there.
set -euo pipefail

log() { echo "[install_chromium] $*" >&2; }

find_chromium() {
    local name
    for name in chromium chromium-browser; do
        if command -v "$name" >/dev/null 2>&1 && "$name" --version >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if found="$(find_chromium)"; then
    log "already installed: $found ($("$found" --version 2>/dev/null))"
    exit 0
fi

if [[ "${RPV2_CHROMIUM_SKIP_APT:-}" == "1" ]]; then
    log "chromium not found and RPV2_CHROMIUM_SKIP_APT=1: install it with apt-get install chromium"
    exit 1
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then
    SUDO="sudo"
fi

log "installing Debian's chromium with apt-get"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core

if found="$(find_chromium)"; then
    log "installed: $found ($("$found" --version 2>/dev/null))"
else
    log "apt-get finished but no chromium binary runs"
    exit 1
fi
