#!/usr/bin/env bash
# Installs the system libraries Sluice links (Debian/Ubuntu): jemalloc, zstd and librdkafka (the Kafka client);
# what the monitoring tests use: the Prometheus text parser (python3-prometheus-client), jsonschema and PyYAML
# (responses against docs/monitoring-api.yaml), and headless Chromium driven by Selenium (chromium,
# chromium-driver, python3-selenium); and noida-db (PyPI), the Kafka broker the Kafka tests run. Safe to run
# again.
set -euo pipefail
packages=(libjemalloc-dev libzstd-dev zstd librdkafka-dev python3-pip python3-prometheus-client python3-jsonschema python3-yaml
    chromium chromium-driver python3-selenium)
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update
    $sudo apt-get install -y "${missing[@]}"
fi
# The Kafka tests' broker: noida-db from PyPI (a Kafka-protocol broker; the tests start it on 127.0.0.1 by PID).
/usr/bin/python3 -c 'import noida_db' 2>/dev/null \
    || $sudo /usr/bin/python3 -m pip install --quiet --break-system-packages noida-db==0.2.3
command -v swift >/dev/null || { echo "setup: Swift 6.1 or newer must be on PATH (swift.org/install)" >&2; exit 1; }
