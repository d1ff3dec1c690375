#!/usr/bin/env python3
"""Loads a Sluice monitoring server as an open Streaming page and a Prometheus scrape would, to measure what
the page costs a job (issue 14: streambench --find-max-rate with --ui against without).

usage: scripts/ui-load.py [BASE_URL] [SECONDS]   (default http://127.0.0.1:4040, until interrupted)

Every second: /api/v1/applications, then the statistics, batches, receivers and sluice resources the page
reads, and /metrics. A program that restarts (each --find-max-rate trial is a new context) is found again.
"""
import json
import sys
import time
import urllib.request

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:4040"
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else float("inf")
start, rounds, failures = time.time(), 0, 0


def get(path):
    with urllib.request.urlopen(base + path, timeout=5) as answer:
        return answer.read()


try:
    while time.time() - start < seconds:
        tick = time.time()
        try:
            app = json.loads(get("/api/v1/applications"))[0]["id"]
            for resource in ["statistics", "batches", "receivers", "sluice"]:
                get(f"/api/v1/applications/{app}/streaming/{resource}")
            get("/metrics")
            rounds += 1
        except OSError:
            failures += 1
        time.sleep(max(0.0, 1.0 - (time.time() - tick)))
except KeyboardInterrupt:
    pass
print(f"ui-load: {rounds} rounds served, {failures} not (no server at the time)")
