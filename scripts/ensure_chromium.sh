#!/bin/sh
# Make headless Chromium and its system chromedriver available for the browser test of the report.
# Idempotent: does nothing when both are present. Installs the Debian packages `chromium` and
# `chromium-driver` (plus a font, so screenshots show text) when run as root; otherwise prints what to install
# and exits 0. Never downloads a driver from anywhere else: selenium uses this system chromedriver.
set -eu

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    echo "chromium and chromedriver present: $(chromium --version 2>/dev/null || echo chromium)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "chromium/chromedriver absent; install them as root with:"
    echo "    apt-get update && apt-get install -y chromium chromium-driver fonts-dejavu-core"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core
echo "installed: $(chromium --version 2>/dev/null || echo chromium)"
