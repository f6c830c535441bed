"""Single-row latency of an exported house-price model: onnxruntime in process (as on a device)
beside `mlpipe serve` (one keep-alive HTTP connection), over the same test rows.

    python onnx_latency.py MODEL.onnx TEST.csv URL [ROWS]

Prints one JSON object: per side, rows, median and 99th-percentile milliseconds per row.
"""
import csv
import http.client
import json
import statistics
import sys
import time
import urllib.parse

import numpy as np
import onnxruntime as ort

model, data, url = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 500
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
kinds = {i.name: i.type for i in session.get_inputs()}
with open(data, newline="") as f:
    rows = list(csv.DictReader(f))[:n]


def typed(name, text):
    if kinds[name] == "tensor(string)":
        return "" if text == "NA" else text
    return float("nan") if text == "NA" else float(text)


def feed(row):
    out = {}
    for name, kind in kinds.items():
        v = typed(name, row[name])
        out[name] = np.array([[v]], dtype=object if kind == "tensor(string)" else np.float64)
    return out


def record(row):
    rec = {}
    for k, v in row.items():
        if v == "NA":
            rec[k] = None
        elif k in kinds and kinds[k] == "tensor(string)":
            rec[k] = v
        else:
            try:
                rec[k] = int(v)
            except ValueError:
                rec[k] = float(v)
    return json.dumps(rec)


def summary(samples):
    ms = sorted(s * 1000 for s in samples)
    return {"rows": len(ms), "p50_ms": statistics.median(ms), "p99_ms": ms[int(0.99 * (len(ms) - 1))]}


feeds = [feed(r) for r in rows]
for f in feeds[:20]:  # warm-up
    session.run(["prediction"], f)
onnx_times = []
for f in feeds:
    t = time.perf_counter()
    session.run(["prediction"], f)
    onnx_times.append(time.perf_counter() - t)

parts = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(parts.hostname, parts.port)
bodies = [record(r) for r in rows]
for b in bodies[:20]:
    conn.request("POST", "/v1/predict", b, {"Content-Type": "application/json"})
    conn.getresponse().read()
serve_times = []
for b in bodies:
    t = time.perf_counter()
    conn.request("POST", "/v1/predict", b, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    serve_times.append(time.perf_counter() - t)
    assert resp.status == 200, resp.status
print(json.dumps({"onnxruntime": summary(onnx_times), "serve": summary(serve_times), "onnxruntime_version": ort.__version__}))
