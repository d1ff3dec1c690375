#!/usr/bin/env bash
# Installs the system libraries Sluice links (Debian/Ubuntu): jemalloc and zstd; and what the monitoring tests
# use: the Prometheus text parser (python3-prometheus-client), jsonschema and PyYAML (responses against
# docs/monitoring-api.yaml), and headless Chromium driven by Selenium (chromium, chromium-driver,
# python3-selenium). Safe to run again.
set -euo pipefail
packages=(libjemalloc-dev libzstd-dev zstd librdkafka-dev python3-prometheus-client python3-jsonschema python3-yaml chromium chromium-driver python3-selenium)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update
    $sudo apt-get install -y "${missing[@]}"
fi
command -v swift >/dev/null || { echo "setup: Swift 6.1 or newer must be on PATH (swift.org/install)" >&2; exit 1; }
