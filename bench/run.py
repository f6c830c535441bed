#!/usr/bin/env python3
"""Benchmarks mlpipe against its peers on this machine, side by side, alternating runs.

    cargo build --release && bench/peers/setup && python3 bench/run.py [--quick]

Prints a Markdown table (median wall time, peak RSS, peer/mlpipe ratio) and writes bench/RESULTS.md.
Peers come from bench/.venv (bench/peers/setup); a case whose peer is not installed is reported as such.
"""
import argparse
import csv
import datetime
import json
import os
import pathlib
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MLPIPE = ROOT / "target" / "release" / "mlpipe"
VENV = ROOT / "bench" / ".venv" / "bin"
PIPELINE = ROOT / "pipelines" / "house-prices.toml"


def measure(cmd, cwd=None, env=None, setup=None):
    """Runs cmd once; returns (seconds, peak RSS in MiB) of that one child process."""
    if setup:
        setup()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode(errors="replace")
        raise SystemExit(f"benchmark command failed: {' '.join(map(str, cmd))}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def compare(name, ours, peer, runs):
    """Alternates the two sides `runs` times; each side is (cmd, cwd, env, setup) or None."""
    samples = {"mlpipe": [], "peer": []}
    for _ in range(runs):
        for side, spec in (("mlpipe", ours), ("peer", peer)):
            if spec:
                samples[side].append(measure(*spec))
    row = {"case": name}
    for side in ("mlpipe", "peer"):
        if samples[side]:
            row[side] = (statistics.median(s[0] for s in samples[side]), max(s[1] for s in samples[side]))
    return row


def peer_python():
    return VENV / "python" if (VENV / "python").exists() else None


def dvc():
    return VENV / "dvc" if (VENV / "dvc").exists() else None


def case_cold(runs, work):
    store = work / "cold-store"
    ours = ([MLPIPE, "run", PIPELINE, "--store", store], None, None, lambda: shutil.rmtree(store, ignore_errors=True))
    py = peer_python()
    peer = ([py, ROOT / "bench" / "peers" / "house_prices.py"], None, None, None) if py else None
    return compare("cold house-price pipeline (1460 rows)", ours, peer, runs)


def large_pipeline(rows, work):
    """`rows` generated rows and the shipped pipeline pointed at them (its gates left out)."""
    data = generated(rows, work)
    text = PIPELINE.read_text().replace('source = "../data-snapshots/house-prices/train.csv"', f'source = "{data}"')
    pipeline = work / f"houses-{rows}.toml"
    pipeline.write_text(text.split("\n# Checked by every")[0] + "\n")
    return data, pipeline


def case_large(rows, runs, work):
    """The full pipeline on `rows` generated rows (bench/generate.py), cold, both sides."""
    py = peer_python()
    if not py:
        return {"case": f"full pipeline, {rows:,} generated rows (peer not installed)"}
    data, pipeline = large_pipeline(rows, work)
    store = work / f"large-store-{rows}"
    ours = ([MLPIPE, "run", pipeline, "--store", store], None, None, lambda: shutil.rmtree(store, ignore_errors=True))
    peer = ([py, ROOT / "bench" / "peers" / "house_prices.py", data], None, None, None)
    return compare(f"full pipeline, {rows:,} generated rows", ours, peer, runs)


def case_features(rows, runs, work):
    """The feature steps alone on `rows` generated rows: mlpipe runs the stages through
    encode.onehot (gather, split, analyse, imputers, encoders; each stored), the peer fits and
    applies the same feature-engine / scikit-learn steps, reading the CSV included on both sides."""
    py = peer_python()
    if not py:
        return {"case": f"feature pipeline, {rows:,} generated rows (peer not installed)"}
    data, pipeline = large_pipeline(rows, work)
    store = work / f"features-store-{rows}"
    ours = ([MLPIPE, "run", pipeline, "--until", "encode.onehot", "--store", store], None, None,
            lambda: shutil.rmtree(store, ignore_errors=True))
    peer = ([py, ROOT / "bench" / "peers" / "house_prices.py", data, "--features-only"], None, None, None)
    return compare(f"feature pipeline (fit on train, apply to train and test), {rows:,} generated rows", ours, peer, runs)


def parquet_copy(data):
    """A zstd Parquet copy of a generated CSV file, written by pyarrow (its canonical CSV is the file)."""
    out = data.with_suffix(".parquet")
    if not out.exists():
        subprocess.run([peer_python() or sys.executable, "-c", (
            "import sys, pyarrow.csv as c, pyarrow.parquet as q;"
            "t = c.read_csv(sys.argv[1], convert_options=c.ConvertOptions(null_values=['NA', ''], strings_can_be_null=True));"
            "q.write_table(t, sys.argv[2], compression='zstd')"), data, out], check=True)
    return out


def case_parquet(rows, runs, work):
    """A late cache miss on `rows` generated rows: the gather stage is stored, `split` is not, so the run
    must read the data again. The same pipeline on the CSV file (peer column) and on a Parquet copy of it
    (mlpipe column, read straight in through the snapshot memo of its first run); both sides split the rows
    too (0.6 s of either side's time). Also: a no-op re-run of each."""
    if not peer_python():
        return [{"case": "Parquet vs CSV reading (pyarrow not installed)"}]
    data, pipeline = large_pipeline(rows, work)
    pq = parquet_copy(data)
    pq_pipeline = work / f"houses-{rows}-parquet.toml"
    pq_pipeline.write_text(pipeline.read_text().replace(str(data), str(pq)))
    out = []
    specs = {}
    for side, p in (("parquet", pq_pipeline), ("csv", pipeline)):
        store = work / f"read-store-{side}"
        def fresh(p=p, store=store):
            shutil.rmtree(store, ignore_errors=True)
            subprocess.run([MLPIPE, "run", p, "--until", "gather", "--store", store], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        specs[side] = (store, ([MLPIPE, "run", p, "--until", "split", "--store", store], None, None, fresh))
    out.append(compare(f"late cache miss: read {rows:,} rows again and split them (Parquet copy vs the CSV file)",
                       specs["parquet"][1], specs["csv"][1], runs))
    noop = lambda side: ([MLPIPE, "run", specs[side][1][0][2], "--until", "split", "--store", specs[side][0]], None, None, None)
    out.append(compare(f"no-op re-run through split, {rows:,} rows (Parquet copy vs the CSV file)",
                       noop("parquet"), noop("csv"), runs))
    return out


MODEL_TRAIN = {
    "linear_regression": ('y', 'estimator = "linear_regression"', '["rmse"]'),
    "ridge": ('y', 'estimator = "ridge"\nalpha = 1.0', '["rmse"]'),
    "lasso": ('y', 'estimator = "lasso"\nalpha = 0.01', '["rmse"]'),
    "logistic_regression": ('label', 'estimator = "logistic_regression"\nC = 1.0', '["accuracy"]'),
}


def models_data(rows, features, work):
    """A seeded table: `features` correlated normal columns, a linear target `y` with noise and a
    two-class `label` drawn from a logistic model of the same columns."""
    path = work / f"models-{rows}.csv"
    if path.exists():
        return path
    code = f"""
import numpy as np, pandas as pd
rng = np.random.default_rng(7)
z = rng.standard_normal(({rows}, {features}))
X = z + 0.3 * z[:, [0]]
beta = rng.uniform(-1, 1, {features})
y = X @ beta + rng.standard_normal({rows})
label = (rng.random({rows}) < 1 / (1 + np.exp(-(X @ beta) / 3))).astype(int)
df = pd.DataFrame(X, columns=[f"x{{i}}" for i in range({features})])
df["y"] = y
df["label"] = label
df.to_csv("{path}", index=False, float_format="%.17g")
"""
    subprocess.run([peer_python() or sys.executable, "-c", code], check=True)
    return path


def train_seconds(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return next(s["seconds"] for s in json.loads(out)["stages"] if s["name"] == "train")


def case_models(rows, features, runs, work):
    """Fit time only (mlpipe's train stage, scikit-learn's `fit`), same table and hyperparameters."""
    py = peer_python()
    if not py:
        return [{"case": "model fit times (peer not installed)"}]
    data = models_data(rows, features, work)
    peer_runs = [json.loads(subprocess.run([py, ROOT / "bench" / "peers" / "fit_models.py", data],
                                           capture_output=True, text=True, check=True).stdout) for _ in range(runs)]
    out = []
    for name, (target, train, metrics) in MODEL_TRAIN.items():
        other = "label" if target == "y" else "y"
        columns = ", ".join(f'"x{i}"' for i in range(features))
        task = "classification" if target == "label" else "regression"
        pipeline = work / f"fit-{name}.toml"
        pipeline.write_text(f"""[pipeline]
name = "fit-{name}"
seed = 1
target = "{target}"
task = "{task}"

[gather]
source = "{data}"
columns = [{columns}, "{target}"]

[split]
method = "random"
test_fraction = 0.01

[train]
{train}

[evaluate]
metrics = {metrics}
""")
        ours = []
        for r in range(runs):
            store = work / f"fit-store-{name}-{r}"
            ours.append(train_seconds([MLPIPE, "run", pipeline, "--json", "--store", store]))
            shutil.rmtree(store, ignore_errors=True)
        out.append({"case": f"fit {name}, {rows:,} × {features} (train stage / `fit` only)",
                    "mlpipe": (statistics.median(ours), None),
                    "peer": (statistics.median(p[name] for p in peer_runs), None)})
    return out


def case_stacking(runs, work):
    """The house-price design with a stacking of ridge, gradient boosting and a random forest on 5-fold
    out-of-fold predictions, final ridge: mlpipe's train stage against StackingRegressor.fit."""
    py = peer_python()
    if not py:
        return {"case": "stacking (peer not installed)"}
    text = PIPELINE.read_text().split("\n# Checked by every")[0]
    # A pipeline reads only inside its project: the data goes beside it.
    shutil.copy(ROOT / "data-snapshots" / "house-prices" / "train.csv", work / "train.csv")
    text = text.replace('source = "../data-snapshots/house-prices/train.csv"', 'source = "train.csv"')
    start = text.index("[train]")
    end = text.index("[evaluate]")
    text = text[:start] + """[train]
estimator = "stacking"
target_transform = "log"
folds = 5

[train.final]
estimator = "ridge"
alpha = 1.0

[[train.base]]
name = "ridge"
estimator = "ridge"
alpha = 10.0

[[train.base]]
name = "gbr"
estimator = "gradient_boosting"
n_estimators = 200
max_depth = 3

[[train.base]]
name = "forest"
estimator = "random_forest"
n_estimators = 100
max_features = 0.3

""" + text[end:]
    pipeline = work / "stacking.toml"
    pipeline.write_text(text)
    ours = []
    for r in range(runs):
        store = work / f"stack-store-{r}"
        ours.append(train_seconds([MLPIPE, "run", pipeline, "--json", "--store", store]))
        shutil.rmtree(store, ignore_errors=True)
    peer = [json.loads(subprocess.run([py, ROOT / "bench" / "peers" / "fit_models.py", "--stacking"],
                                      capture_output=True, text=True, check=True).stdout)["stacking"] for _ in range(runs)]
    return {"case": "stacking ridge + boosting + forest, 5-fold OOF, house prices (train stage / `fit` only)",
            "mlpipe": (statistics.median(ours), None), "peer": (statistics.median(peer), None)}


def measure_limited(cmd, limit_bytes):
    """Like measure, but under an address-space limit; a failure is a result, not an abort."""
    def limit():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limit)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    ok = os.waitstatus_to_exitcode(status) == 0
    lines = [] if ok else proc.stderr.read().decode(errors="replace").strip().splitlines()
    # The cause, not a backtrace's last line: an allocation failure or mlpipe's error, else the last line.
    cause = [l for l in lines if l.startswith(("memory allocation of", "error:", "MemoryError", "numpy"))]
    note = (cause or lines[-1:] or [""])[0]
    return elapsed, usage.ru_maxrss / 1024, ok, note


def case_growth(sizes, work, limit_gib=20):
    """Case 7: the full pipeline (case 4) at growing sizes, one cold run per side and size, each under a
    {limit_gib} GiB address-space limit (the machine has 24 GiB); a side that fails is reported as such."""
    py = peer_python()
    rows = []
    for n in sizes:
        data = generated(n, work)
        text = PIPELINE.read_text().replace('source = "../data-snapshots/house-prices/train.csv"', f'source = "{data}"')
        pipeline = work / f"growth-{n}.toml"
        pipeline.write_text(text.split("\n# Checked by every")[0] + "\n")
        store = work / f"growth-store-{n}"
        shutil.rmtree(store, ignore_errors=True)
        ours = measure_limited([MLPIPE, "run", pipeline, "--store", store], limit_gib << 30)
        shutil.rmtree(store, ignore_errors=True)
        # A peer that failed at a smaller size is not run again at a larger one.
        peer_failed = any(r["peer"] and not r["peer"][2] for r in rows)
        peer = (measure_limited([py, ROOT / "bench" / "peers" / "house_prices.py", data], limit_gib << 30)
                if py and not peer_failed else None)
        rows.append({"rows": n, "mlpipe": ours, "peer": peer, "peer_skipped": peer_failed})
        if n >= 1_000_000:
            data.unlink()
    return rows


def growth_table(rows, limit_gib=20):
    out = [f"| rows (growth, one cold run each, {limit_gib} GiB limit) | mlpipe s | mlpipe peak RSS MiB | peer s | peer peak RSS MiB | peer / mlpipe |",
           "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        def cells(side):
            v = r.get(side)
            if side == "peer" and r.get("peer_skipped"):
                return "not run (failed at a smaller size)", "—"
            if not v:
                return "—", "—"
            if not v[2]:
                return f"failed after {v[0]:.1f} s ({v[3][:60]})", f"{v[1]:.0f}"
            return f"{v[0]:.2f}", f"{v[1]:.0f}"
        o, p = cells("mlpipe"), cells("peer")
        ok = r.get("mlpipe") and r["mlpipe"][2] and r.get("peer") and r["peer"][2]
        ratio = f"{r['peer'][0] / r['mlpipe'][0]:.1f}×" if ok else "—"
        out.append(f"| {r['rows']:,} | {o[0]} | {o[1]} | {p[0]} | {p[1]} | {ratio} |")
    return "\n".join(out)


def write_section(marker, text):
    results = ROOT / "bench" / "RESULTS.md"
    body = results.read_text() if results.exists() else "# Benchmark results\n"
    if marker in body:
        before, _, rest = body.partition(marker)
        _, _, after = rest.partition(marker)
        body = f"{before}{marker}\n{text}{marker}{after}"
    else:
        body = body.rstrip("\n") + f"\n\n{marker}\n{text}{marker}\n"
    results.write_text(body)


def case_noop(runs, work):
    store = work / "noop-store"
    subprocess.run([MLPIPE, "run", PIPELINE, "--store", store], check=True, capture_output=True)
    ours = ([MLPIPE, "run", PIPELINE, "--store", store], None, None, None)
    peer = None
    if dvc():
        repo = work / "dvc-noop"
        repo.mkdir()
        shutil.copy(ROOT / "data-snapshots" / "house-prices" / "train.csv", repo / "train.csv")
        (repo / "dvc.yaml").write_text(
            "stages:\n"
            "  impute:\n    cmd: cp train.csv imputed.csv\n    deps: [train.csv]\n    outs: [imputed.csv]\n"
            "  encode:\n    cmd: cp imputed.csv encoded.csv\n    deps: [imputed.csv]\n    outs: [encoded.csv]\n"
            "  train:\n    cmd: cp encoded.csv model.csv\n    deps: [encoded.csv]\n    outs: [model.csv]\n"
        )
        env = dict(os.environ, PATH=f"{VENV}:{os.environ['PATH']}")
        for c in (["git", "init", "-q"], [dvc(), "init", "-q"], [dvc(), "repro", "-q"]):
            subprocess.run(c, cwd=repo, check=True, capture_output=True, env=env)
        peer = ([dvc(), "repro"], repo, env, None)
    return compare("no-op re-run (3+ stages, nothing changed)", ours, peer, runs)


def case_hash(runs, work, size):
    data = work / "big.bin"
    with open(data, "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(block)
    rows = [compare(f"hash a {size >> 20} MiB file (id only)", ([MLPIPE, "snapshot", data, "--hash-only"], None, None, None), None, runs)]
    store = work / "hash-store"
    ours = ([MLPIPE, "snapshot", data, "--store", store], None, None, lambda: shutil.rmtree(store, ignore_errors=True))
    peer = None
    if dvc():
        repo = work / "dvc-add"
        env = dict(os.environ, PATH=f"{VENV}:{os.environ['PATH']}")

        def fresh():
            shutil.rmtree(repo, ignore_errors=True)
            repo.mkdir()
            os.link(data, repo / "big.bin")
            for c in (["git", "init", "-q"], [dvc(), "init", "-q"]):
                subprocess.run(c, cwd=repo, check=True, capture_output=True, env=env)

        peer = ([dvc(), "add", "big.bin"], repo, env, fresh)
    rows.append(compare(f"snapshot a {size >> 20} MiB file into the store (vs dvc add)", ours, peer, runs))
    return rows


def generated(rows, work):
    """A house-shaped table of `rows` rows (bench/generate.py, seed 1), made once per bench run."""
    data = work / f"houses-{rows}.csv"
    if not data.exists():
        subprocess.run([peer_python() or sys.executable, ROOT / "bench" / "generate.py", "--rows", str(rows),
                        "--seed", "1", "--out", data], check=True)
    return data


def fitted_run(work):
    """Runs the shipped pipeline into a bench store; returns (store, run id)."""
    store = work / "serve-store"
    out = subprocess.run([MLPIPE, "run", PIPELINE, "--store", store, "--json"], check=True, capture_output=True, text=True)
    return store, json.loads(out.stdout)["run"]


def case_export(runs, work):
    """ONNX export of the shipped house-price run: time and file size; then single-row latency of the
    file in onnxruntime beside `mlpipe serve` on the same 500 test rows (bench/peers/onnx_latency.py)."""
    py = peer_python()
    store, run = fitted_run(work)
    model = work / "house-prices.onnx"
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([MLPIPE, "export", run, "-o", model, "--store", store], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    out = {"export_s": statistics.median(times), "bytes": model.stat().st_size}
    if not py or subprocess.run([py, "-c", "import onnxruntime"], capture_output=True).returncode != 0:
        out["latency"] = None
        return out
    port = free_port()
    server = subprocess.Popen([MLPIPE, "serve", run, "--addr", f"127.0.0.1:{port}", "--store", store],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        res = subprocess.run([py, ROOT / "bench" / "peers" / "onnx_latency.py", model,
                              ROOT / "data-snapshots" / "house-prices" / "test.csv", f"http://127.0.0.1:{port}"],
                             check=True, capture_output=True, text=True)
        out["latency"] = json.loads(res.stdout)
    finally:
        server.terminate()
        server.wait()
    return out


def export_table(r):
    lines = [f"`mlpipe export` of the house-price run: {r['export_s'] * 1000:.0f} ms (median of the runs, "
             f"process start included), file {r['bytes']:,} bytes.", ""]
    lat = r.get("latency")
    if lat:
        lines += ["| single-row prediction, 500 test rows | p50 ms | p99 ms |", "|---|---:|---:|",
                  f"| exported file in onnxruntime {lat['onnxruntime_version']} (in process, as on a device) | "
                  f"{lat['onnxruntime']['p50_ms']:.3f} | {lat['onnxruntime']['p99_ms']:.3f} |",
                  f"| mlpipe serve, one keep-alive connection (HTTP round trip and ledger commit included) | "
                  f"{lat['serve']['p50_ms']:.3f} | {lat['serve']['p99_ms']:.3f} |"]
    else:
        lines.append("(onnxruntime not installed in bench/.venv: no latency)")
    return "\n".join(lines)


def case_batch(rows, runs, work):
    """Case 5: batch predict on generated rows, CSV in and out, vs scikit-learn's Pipeline.predict."""
    data = generated(rows, work)
    store, run = fitted_run(work)
    out = work / "batch-out.csv"
    ours = ([MLPIPE, "predict", run, "--input", data, "-o", out, "--store", store], None, None, None)
    py = peer_python()
    peer = None
    if py:
        model = work / "peer-model.pkl"
        script = ROOT / "bench" / "peers" / "house_prices_predict.py"
        subprocess.run([py, script, "fit", ROOT / "data-snapshots" / "house-prices" / "train.csv", model], check=True)
        peer = ([py, script, "predict", model, data, work / "peer-out.csv"], None, None, None)
    return compare(f"batch predict, {rows:,} generated rows to CSV", ours, peer, runs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url, lua, connections, seconds):
    """wrk on loopback: (requests/s, p50 ms, p99 ms, non-2xx count)."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", lua, url],
                         check=True, capture_output=True, text=True).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(pct):
        m = re.search(rf"^\s+{pct}%\s+([0-9.]+)(us|ms|s)", out, re.M)
        return float(m.group(1)) * unit[m.group(2)]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", out)
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    return rps, latency(50), latency(99), (int(bad.group(1)) if bad else 0) + (int(timeouts.group(1)) if timeouts else 0)


def wait_for(url, seconds=120):
    import urllib.request
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except OSError:
            time.sleep(0.5)
    return False


def case_rest(work, seconds, connections):
    """Case 6: single-record POSTs from wrk on loopback, mlpipe serve vs mlflow models serve."""
    if not shutil.which("wrk"):
        return [{"case": "REST (wrk not installed: apt-get install wrk)"}]
    store, run = fitted_run(work)
    with open(ROOT / "data-snapshots" / "house-prices" / "test.csv", newline="") as f:
        row = next(csv.DictReader(f))
    record = {}
    for k, v in row.items():
        if v == "NA":
            record[k] = None
        elif k == "MSSubClass":
            record[k] = v
        else:
            try:
                record[k] = int(v)
            except ValueError:
                try:
                    record[k] = float(v)
                except ValueError:
                    record[k] = v
    rows = []
    ours_lua = work / "mlpipe.lua"
    ours_lua.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                        f"wrk.body = {json.dumps(json.dumps(record))}\n")
    port = free_port()
    server = subprocess.Popen([MLPIPE, "serve", run, "--addr", f"127.0.0.1:{port}", "--store", store],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        wrk(f"http://127.0.0.1:{port}/v1/predict", ours_lua, connections, 2)  # warm-up
        for c in connections_list(connections):
            rps, p50, p99, bad = wrk(f"http://127.0.0.1:{port}/v1/predict", ours_lua, c, seconds)
            rows.append({"case": f"mlpipe serve, {c} connections", "rps": rps, "p50": p50, "p99": p99, "bad": bad})
    finally:
        server.terminate()
        server.wait()
    mlflow = VENV / "mlflow"
    if not mlflow.exists():
        rows.append({"case": "mlflow models serve (not installed)"})
        return rows
    model = work / "mlflow-model"
    subprocess.run([peer_python(), ROOT / "bench" / "peers" / "mlflow_model.py",
                    ROOT / "data-snapshots" / "house-prices" / "train.csv", model], check=True, capture_output=True)
    peer_record = dict(record)
    peer_record.pop("Id")
    peer_lua = work / "mlflow.lua"
    peer_lua.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                        f"wrk.body = {json.dumps(json.dumps({'dataframe_records': [peer_record]}))}\n")
    port = free_port()
    env = dict(os.environ, PATH=f"{VENV}:{os.environ['PATH']}")
    server = subprocess.Popen([mlflow, "models", "serve", "-m", model, "-p", str(port), "--env-manager", "local"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_for(f"http://127.0.0.1:{port}/ping"):
            rows.append({"case": "mlflow models serve (did not start)"})
            return rows
        for c in connections_list(connections):
            rps, p50, p99, bad = wrk(f"http://127.0.0.1:{port}/invocations", peer_lua, c, seconds)
            rows.append({"case": f"mlflow models serve, {c} connections", "rps": rps, "p50": p50, "p99": p99, "bad": bad})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
    return rows


def pg_bin():
    found = sorted(pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def case_pg_snapshot(rows, runs, work):
    """Snapshot of a PostgreSQL table of generated rows vs psql \\copy to CSV and hashing the file."""
    bin_dir = pg_bin()
    if not bin_dir or not shutil.which("psql"):
        return {"case": f"snapshot {rows:,} rows from PostgreSQL (PostgreSQL not installed)"}
    data = generated(rows, work)
    # Its own folder under the system temp dir: the server runs as `postgres`, which cannot enter `work`.
    cluster = pathlib.Path(tempfile.mkdtemp(prefix="mlpipe-bench-pg-"))
    as_root = os.geteuid() == 0
    user = "root" if as_root else os.environ.get("USER", "postgres")
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(cluster, "postgres", "postgres")
    subprocess.run(run_as + [bin_dir / "initdb", "-D", cluster / "data", "-A", "trust", "-U", user, "--no-sync"],
                   check=True, capture_output=True)
    subprocess.run(run_as + [bin_dir / "pg_ctl", "-D", cluster / "data", "-o", f"-k {cluster} -c listen_addresses=''",
                             "-l", cluster / "log", "-w", "start"], check=True, capture_output=True)
    try:
        with open(data, newline="") as f:
            reader = csv.reader(f)
            head = next(reader)
            sample = [next(reader) for _ in range(20000)]

        def sql_type(i):
            vals = [r[i] for r in sample if r[i] != "NA"]
            if all(v.lstrip("-").isdigit() for v in vals):
                return "bigint"
            if all(v.replace(".", "", 1).lstrip("-").isdigit() for v in vals):
                return "double precision"
            return "text"

        ddl = ", ".join(f'"{h}" {sql_type(i)}' for i, h in enumerate(head))
        psql = ["psql", "-X", "-q", "-h", str(cluster), "-U", user, "-d", "postgres"]
        subprocess.run(psql + ["-c", f"CREATE TABLE houses ({ddl})"], check=True)
        subprocess.run(psql + ["-c", f"\\copy houses FROM '{data}' CSV HEADER NULL 'NA'"], check=True)
        url = f"postgres://{user}@/postgres?host={cluster}"
        ours = ([MLPIPE, "snapshot", url, "--table", "houses", "--order-by", "Id", "--na", "NA", "--hash-only"],
                None, None, None)
        out = work / "pg-copy.csv"
        hasher = "b3sum" if shutil.which("b3sum") else "sha256sum"
        copy = f"\\copy (SELECT * FROM houses ORDER BY \"Id\") TO '{out}' CSV HEADER NULL 'NA'"
        peer = (["sh", "-c", " ".join(shlex.quote(str(a)) for a in psql + ["-c", copy]) + f" && {hasher} {out}"],
                None, None, None)
        row = compare(f"snapshot {rows:,} rows from PostgreSQL (vs psql \\copy + {hasher})", ours, peer, runs)
        if "mlpipe" in row:
            row["case"] += f"; mlpipe {rows / row['mlpipe'][0]:,.0f} rows/s"
        return row
    finally:
        subprocess.run(run_as + [bin_dir / "pg_ctl", "-D", cluster / "data", "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(cluster, ignore_errors=True)


def connections_list(most):
    return [c for c in (1, 4, 16) if c <= most]


def rest_table(rows):
    out = ["| REST, single-record requests | requests/s | p50 ms | p99 ms | non-2xx or timed out |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        if "rps" not in r:
            out.append(f"| {r['case']} | — | — | — | — |")
            continue
        out.append(f"| {r['case']} | {r['rps']:.0f} | {r['p50']:.3f} | {r['p99']:.3f} | {r['bad']} |")
    ours = {r["case"].split(", ")[1]: r["rps"] for r in rows if r["case"].startswith("mlpipe") and "rps" in r}
    peer = {r["case"].split(", ")[1]: r["rps"] for r in rows if r["case"].startswith("mlflow") and "rps" in r}
    ratios = [f"{k}: {ours[k] / peer[k]:.0f}×" for k in ours if k in peer and peer[k] > 0]
    if ratios:
        out.append("")
        out.append("Throughput ratio mlpipe / MLflow: " + ", ".join(ratios) + ".")
    return "\n".join(out)


def machine():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}"


def table(rows):
    out = ["| case | mlpipe median s | mlpipe peak RSS MiB | peer median s | peer peak RSS MiB | peer / mlpipe |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ours, peer = r.get("mlpipe"), r.get("peer")
        cell = lambda v, i, f: f.format(v[i]) if v and v[i] is not None else "—"
        ratio = f"{peer[0] / ours[0]:.1f}×" if ours and peer else "—"
        out.append(f"| {r['case']} | {cell(ours, 0, '{:.4f}')} | {cell(ours, 1, '{:.0f}')} | "
                   f"{cell(peer, 0, '{:.4f}')} | {cell(peer, 1, '{:.0f}')} | {ratio} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer runs and a 100 MiB file")
    ap.add_argument("--only", choices=["growth", "models", "features", "export", "parquet"], help="run one case only (its table in RESULTS.md is replaced)")
    args = ap.parse_args()
    if not MLPIPE.exists():
        sys.exit("build first: cargo build --release")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000, 5_000_000, 10_000_000, 20_000_000]
    def publish(marker, body):
        """Prints one case's section and, on a full run, replaces it in RESULTS.md."""
        text = f"{datetime.date.today()} · commit {commit} · {machine()}\n\n{body}\n"
        print(text)
        if not args.quick:
            write_section(marker, text)

    if args.only == "models":
        with tempfile.TemporaryDirectory() as tmp:
            work = pathlib.Path(tmp)
            rows = case_models(100_000 if args.quick else 1_000_000, 50, 1 if args.quick else 3, work)
            rows.append(case_stacking(1 if args.quick else 3, work))
        return publish("<!-- models -->", table(rows))
    if args.only == "export":
        with tempfile.TemporaryDirectory() as tmp:
            return publish("<!-- export -->", export_table(case_export(3 if args.quick else 9, pathlib.Path(tmp))))
    if args.only == "features":
        with tempfile.TemporaryDirectory() as tmp:
            rows = [case_features(100_000 if args.quick else 1_000_000, 1 if args.quick else 3, pathlib.Path(tmp))]
        return publish("<!-- features -->", table(rows))
    if args.only == "parquet":
        with tempfile.TemporaryDirectory() as tmp:
            rows = case_parquet(100_000 if args.quick else 1_000_000, 3 if args.quick else 5, pathlib.Path(tmp))
        return publish("<!-- parquet -->", table(rows).replace("peer", "CSV").replace("mlpipe", "Parquet"))
    if args.only == "growth":
        with tempfile.TemporaryDirectory() as tmp:
            return publish("<!-- growth -->", growth_table(case_growth(sizes, pathlib.Path(tmp))))
    runs = 3 if args.quick else 9
    size = (100 if args.quick else 500) << 20
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        rows = [case_cold(runs, work), case_noop(runs * 3, work)] + case_hash(runs, work, size)
        rows.append(case_large(100_000 if args.quick else 1_000_000, 1 if args.quick else 3, work))
        rows.append(case_features(100_000 if args.quick else 1_000_000, 1 if args.quick else 3, work))
        rows.append(case_batch(100_000 if args.quick else 1_000_000, 1 if args.quick else 3, work))
        rows.append(case_pg_snapshot(100_000 if args.quick else 1_000_000, 1 if args.quick else 3, work))
        rows += case_models(100_000 if args.quick else 1_000_000, 50, 1 if args.quick else 3, work)
        rows.append(case_stacking(1 if args.quick else 3, work))
        rest = case_rest(work, 3 if args.quick else 10, 4 if args.quick else 16)
        growth = case_growth(sizes, work)
    head = (f"{datetime.date.today()} · commit {commit} · {machine()} · {runs} runs per side "
            f"(no-op: {runs * 3}; large: {1 if args.quick else 3}), alternating")
    text = f"{head}\n\n{table(rows)}\n\n{rest_table(rest)}\n"
    print(text)
    growth_text = f"{datetime.date.today()} · commit {commit} · {machine()}\n\n{growth_table(growth)}\n"
    print(growth_text)
    if not args.quick:
        write_section("<!-- table -->", text)
        write_section("<!-- growth -->", growth_text)


if __name__ == "__main__":
    main()
