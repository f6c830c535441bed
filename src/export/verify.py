"""Runs an exported ONNX file in onnxruntime on the rows mlpipe wrote beside it and compares.

    python3 verify.py CASE.json

CASE.json: {"model": path, "inputs": {column: {"type": "double"|"string", "values": [...]}},
"expected": {"prediction": [...], "probabilities": [[...], ...] (classifiers)}}. Numbers may be null
(missing: NaN). Prints one JSON line: rows, the largest absolute and relative deviations, how many
predicted labels differ and how many values are NaN on one side only. Exit 3 when onnx or onnxruntime is missing.
"""
import json
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError as e:
    print(json.dumps({"missing": str(e)}))
    sys.exit(3)

case = json.load(open(sys.argv[1]))
model = onnx.load(case["model"])
onnx.checker.check_model(model, full_check=True)
session = ort.InferenceSession(case["model"], providers=["CPUExecutionProvider"])
feed = {}
for name, col in case["inputs"].items():
    if col["type"] == "double":
        values = [np.nan if v is None else v for v in col["values"]]
        feed[name] = np.array(values, dtype=np.float64).reshape(-1, 1)
    else:
        feed[name] = np.array(col["values"], dtype=object).reshape(-1, 1)
names = [o.name for o in session.get_outputs()]
got = dict(zip(names, session.run(None, feed)))
max_abs, max_rel, mismatches, nan_mismatches = 0.0, 0.0, 0, 0


def compare(ours, theirs):
    global max_abs, max_rel, nan_mismatches
    for a, b in zip(np.ravel(theirs), np.ravel(ours)):
        b = np.nan if b is None else b
        if np.isnan(a) and np.isnan(b):
            continue
        if np.isnan(a) or np.isnan(b):
            nan_mismatches += 1
            continue
        d = abs(float(a) - float(b))
        max_abs = max(max_abs, d)
        max_rel = max(max_rel, d / abs(b) if b != 0 else d)


expected = case["expected"]
prediction = got["prediction"].ravel()
if prediction.dtype == object:
    mismatches = sum(1 for a, b in zip(prediction, expected["prediction"]) if a != b)
else:
    compare(expected["prediction"], prediction)
if "probabilities" in expected:
    compare(np.array(expected["probabilities"], dtype=np.float64), got["probabilities"])
    if prediction.dtype != object:
        mismatches = sum(1 for a, b in zip(prediction, expected["prediction"]) if a != b)
print(json.dumps({"rows": int(len(prediction)), "max_abs": max_abs, "max_rel": max_rel,
                  "label_mismatches": mismatches, "nan_mismatches": nan_mismatches,
                  "onnxruntime": ort.__version__}))
