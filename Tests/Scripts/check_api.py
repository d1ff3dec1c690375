#!/usr/bin/env python3
"""Checks a running Sluice program's JSON API against docs/monitoring-api.yaml and reads its /metrics.

usage: check_api.py BASE_URL OPENAPI_YAML OUTPUT_JSON [history]

Fetches every path of the document (path parameters taken from the responses: the application id, each
receiver, each retained batch), validates each 200 response with jsonschema against the document's schema for
it, checks that answers other than 200 are ones the document lists, and parses /metrics with prometheus_client
(a run served from its event log, "history", has no metrics: /metrics must answer 404).
Writes {"checked": [...], "errors": [...], "responses": {...}, "metrics": [[name, labels, value], ...]}.
"""
import json
import sys
import urllib.error
import urllib.request

import jsonschema
import yaml
from prometheus_client.parser import text_string_to_metric_families

base, document_path, output_path = sys.argv[1], sys.argv[2], sys.argv[3]
history = sys.argv[4:] == ["history"]
document = yaml.safe_load(open(document_path))
resolver = jsonschema.RefResolver(base_uri="", referrer=document)
checked, errors, responses = [], [], {}


def fetch(path):
    try:
        with urllib.request.urlopen(base + path, timeout=30) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def check(template, path):
    """Fetches path (an instance of the document's template) and validates the answer."""
    status, content_type, body = fetch(path)
    operation = document["paths"][template]["get"]
    checked.append(path)
    documented = operation["responses"].get(str(status))
    if documented is None:
        errors.append(f"{path}: status {status} is not documented for {template}: {body[:200]!r}")
        return None
    if status != 200:
        return None
    schema = documented["content"]["application/json"]["schema"]
    if not content_type.startswith("application/json"):
        errors.append(f"{path}: content type {content_type}")
        return None
    value = json.loads(body)
    validator = jsonschema.Draft202012Validator(schema, resolver=resolver)
    for problem in validator.iter_errors(value):
        errors.append(f"{path}: {'/'.join(str(p) for p in problem.absolute_path)}: {problem.message}")
    responses[path] = value
    return value


applications = check("/api/v1/applications", "/api/v1/applications")
app = applications[0]["id"]
prefix = f"/api/v1/applications/{app}"
check("/api/v1/applications/{appId}", prefix)
streaming = "/api/v1/applications/{appId}/streaming"
check(streaming + "/statistics", prefix + "/streaming/statistics")
check(streaming + "/sluice", prefix + "/streaming/sluice")
for receiver in check(streaming + "/receivers", prefix + "/streaming/receivers") or []:
    check(streaming + "/receivers/{streamId}", f"{prefix}/streaming/receivers/{receiver['streamId']}")
check(streaming + "/receivers/{streamId}", f"{prefix}/streaming/receivers/999")
batches = check(streaming + "/batches", prefix + "/streaming/batches") or []
check(streaming + "/batches", prefix + "/streaming/batches?status=COMPLETED")
check(streaming + "/batches", prefix + "/streaming/batches?status=NOPE")
for batch in batches:
    bid = batch["batchId"]
    check(streaming + "/batches/{batchId}", f"{prefix}/streaming/batches/{bid}")
    check(streaming + "/batches/{batchId}/operations", f"{prefix}/streaming/batches/{bid}/operations")
    check(streaming + "/batches/{batchId}/inputs", f"{prefix}/streaming/batches/{bid}/inputs")
check(streaming + "/batches/{batchId}", prefix + "/streaming/batches/12")
check(streaming + "/batches/{batchId}", prefix + "/streaming/batches/x")
check("/api/v1/applications/{appId}", "/api/v1/applications/local-0")

status, content_type, body = fetch("/metrics")
metrics = []
if history:
    if status != 404:
        errors.append(f"/metrics of a run read back from its event log: status {status}")
elif status != 200 or not content_type.startswith("text/plain"):
    errors.append(f"/metrics: status {status}, content type {content_type}")
else:
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            metrics.append([sample.name, sample.labels, sample.value])

json.dump({"checked": checked, "errors": errors, "responses": responses, "metrics": metrics}, open(output_path, "w"))
