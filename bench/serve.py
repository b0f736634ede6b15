"""Benchmark of the predictor (`make bench-serve`), with wrk on loopback.

Trains a store on the full-size synthetic file, starts `agi-credit serve` (compiled fast
engine, then every version in R), a stock KServe server with a scikit-learn
LogisticRegression, and a minimal FastAPI endpoint, and drives each with the same wrk
settings. Prints requests/s, p50 and p99, our figures as ratios to the other two, cold
start and memory, and exits 1 when a target of the issue is missed.

`--baseline-src DIR` (a source tree, e.g. `git worktree add /tmp/base <commit>`) also
runs DIR's predictor and sidecar beside ours and measures each compiled line on both,
alternating (`--rounds`, the best of each), and prints them side by side: the same request
bodies, the same store, one run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import numpy as np
from processes import free_port, memory_kib  # bench/ is on sys.path: run as a script

from agi_credit.data.reference import OFFICIAL_ROWS

REPO = Path(__file__).resolve().parents[1]
FEATURES = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]
ROWS = OFFICIAL_ROWS
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
SINGLE_CONNECTIONS = 4
MILLION_ROUNDS = 5
TARGETS = {
    "p99 single-row v2 (ms)": 15.0,
    "100,000-row v2 binary p50 (ms)": 300.0,
    "cold start to ready (s)": 5.0,
    "peak RSS (MB)": 400.0,
}


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float


def row_values(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "AMT_INCOME_TOTAL": rng.lognormal(11.9, 0.5, n),
        "AMT_CREDIT": rng.lognormal(13.0, 0.7, n),
        "DAYS_BIRTH": -rng.uniform(7500, 25000, n),
        "AMT_GOODS_PRICE": rng.lognormal(12.9, 0.7, n),
    }


def v2_json_single(matrix_name: str | None = None) -> tuple[bytes, dict[str, str]]:
    values = {
        "AMT_INCOME_TOTAL": 135000.0,
        "AMT_CREDIT": 513531.0,
        "DAYS_BIRTH": -15000.0,
        "AMT_GOODS_PRICE": 450000.0,
    }
    if matrix_name:
        inputs = [
            {
                "name": matrix_name,
                "shape": [1, 4],
                "datatype": "FP64",
                "data": list(values.values()),
            }
        ]
    else:
        inputs = [
            {"name": k, "shape": [1], "datatype": "FP64", "data": [v]} for k, v in values.items()
        ]
    return json.dumps({"inputs": inputs}).encode(), {"Content-Type": "application/json"}


def v1_single() -> tuple[bytes, dict[str, str]]:
    instance = {
        "AMT_INCOME_TOTAL": 135000.0,
        "AMT_CREDIT": 513531.0,
        "DAYS_BIRTH": -15000.0,
        "AMT_GOODS_PRICE": 450000.0,
    }
    return json.dumps({"instances": [instance]}).encode(), {"Content-Type": "application/json"}


def v2_binary(rows: int, matrix_name: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A binary-tensor request with binary outputs, as tritonclient sends it."""
    values = row_values(np.random.default_rng(rows), rows)
    if matrix_name:
        blobs = [np.column_stack([values[f] for f in FEATURES]).astype("<f8").tobytes()]
        inputs = [
            {
                "name": matrix_name,
                "shape": [rows, 4],
                "datatype": "FP64",
                "parameters": {"binary_data_size": len(blobs[0])},
            }
        ]
    else:
        blobs = [values[f].astype("<f8").tobytes() for f in FEATURES]
        inputs = [
            {
                "name": f,
                "shape": [rows],
                "datatype": "FP64",
                "parameters": {"binary_data_size": len(b)},
            }
            for f, b in zip(FEATURES, blobs, strict=True)
        ]
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    return header + b"".join(blobs), {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }


def wrk(
    name: str, url: str, body: bytes, headers: dict[str, str], work: Path, *, connections: int
) -> Result:
    body_file = work / f"body-{abs(hash(name))}.bin"
    body_file.write_bytes(body)
    script = work / f"script-{abs(hash(name))}.lua"
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script.write_text(
        f'wrk.method = "POST"\n{header_lines}\n'
        f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*all")\n'
        "f:close()\n"
    )
    # One check first: a benchmark of error responses measures nothing.
    check = httpx.post(url, content=body, headers=headers, timeout=60)
    if check.status_code != 200:
        sys.exit(f"{name}: {check.status_code} {check.text[:300]}")
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{SECONDS}s",
            "--latency",
            "--timeout",
            "30s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        sys.exit(f"{name}: wrk saw error responses:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Result(name, rps, _latency(out, "50%"), _latency(out, "99%"))


def timed(name: str, url: str, body: bytes, headers: dict[str, str], rounds: int) -> Result:
    """Requests too long for wrk's fixed duration: `rounds` of them one after the other,
    after one to warm up; p99 is the slowest."""
    seconds = []
    with httpx.Client(timeout=300) as client:
        for i in range(rounds + 1):
            started = time.perf_counter()
            response = client.post(url, content=body, headers=headers)
            if response.status_code != 200:
                sys.exit(f"{name}: {response.status_code} {response.text[:300]}")
            if i:
                seconds.append(time.perf_counter() - started)
    return Result(
        name, 1 / statistics.mean(seconds), statistics.median(seconds) * 1e3, max(seconds) * 1e3
    )


def _latency(out: str, quantile: str) -> float:
    value, unit = re.search(rf"{quantile}\s+([\d.]+)(us|ms|s|m)\b", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


@contextmanager
def process(
    cmd: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, **(env or {})}
        )
    try:
        while True:
            if proc.poll() is not None:
                sys.exit(f"{' '.join(cmd)} exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield proc, time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def peak_rss_mb(pid: int) -> float:
    return memory_kib(pid)["VmHWM"] / 1024


@contextmanager
def predictor(
    work: Path, store: Path, scoring: str, src: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """Our predictor, from this tree or from `src`'s: its URL, process and cold start."""
    port, grpc = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "agi_credit", "serve", "--store", str(store)]
    cmd += ["--http-port", str(port), "--grpc-port", str(grpc)]
    env = {"SCORING": scoring, **({"PYTHONPATH": str(src)} if src else {})}
    log = work / f"ours-{scoring}{'-baseline' if src else ''}.log"
    with process(cmd, f"{base}/v2/health/ready", log, env) as (proc, cold):
        yield base, proc, cold


def measures(work: Path, base: str, scoring: str) -> list[Callable[[], Result]]:
    """Our lines against the predictor at `base`, each a call that measures it."""
    engine = "compiled" if scoring == "auto" else "R engine"
    infer = f"{base}/v2/models/agi-credit/infer"
    lines = [
        partial(
            wrk,
            f"ours v2 single row ({engine})",
            infer,
            *v2_json_single(),
            work,
            connections=SINGLE_CONNECTIONS,
        ),
        partial(
            wrk,
            f"ours v1 single row ({engine})",
            f"{base}/v1/models/agi-credit:predict",
            *v1_single(),
            work,
            connections=SINGLE_CONNECTIONS,
        ),
    ]
    for rows in (10_000, 100_000):
        name = f"ours v2 binary {rows:,} rows ({engine})"
        lines.append(partial(wrk, name, infer, *v2_binary(rows), work, connections=1))
    if scoring == "auto":
        name = f"ours v2 binary {1_000_000:,} rows ({engine})"
        lines.append(partial(timed, name, infer, *v2_binary(1_000_000), MILLION_ROUNDS))
    return lines


def ours(work: Path, store: Path, scoring: str) -> tuple[list[Result], float, float]:
    with predictor(work, store, scoring) as (base, proc, cold):
        results = [measure() for measure in measures(work, base, scoring)]
        rss = peak_rss_mb(proc.pid)
        if scoring == "auto":
            with sidecar(work, base) as (url, token):
                results.append(through_sidecar(work, url, token))
    return results, cold, rss


def before_after(work: Path, store: Path, src: Path, rounds: int) -> list[tuple[Result, Result]]:
    """Each compiled line against `src`'s predictor and sidecar (before) and ours (after),
    both running, alternating `rounds` times line by line; the best round of each."""
    with (
        predictor(work, store, "auto", src) as (old, _, _),
        predictor(work, store, "auto") as (new, _, _),
        sidecar(work, old, src) as old_sidecar,
        sidecar(work, new) as new_sidecar,
    ):
        olds = [*measures(work, old, "auto"), partial(through_sidecar, work, *old_sidecar)]
        news = [*measures(work, new, "auto"), partial(through_sidecar, work, *new_sidecar)]
        pairs = []
        for before, after in zip(olds, news, strict=True):
            runs: tuple[list[Result], list[Result]] = ([], [])
            for _ in range(rounds):
                runs[0].append(before())
                runs[1].append(after())
            pairs.append((max(runs[0], key=lambda r: r.rps), max(runs[1], key=lambda r: r.rps)))
    return pairs


@contextmanager
def sidecar(work: Path, upstream: str, src: Path | None = None) -> Iterator[tuple[str, str]]:
    """The auth sidecar (dev, the origin's user) in front of `upstream`: URL and token."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "agi_credit", "auth", "--port", str(port), "--upstream", upstream]
    cmd += ["--grpc-port", "0"] + ([] if src else ["--metrics-port", "0"])
    env = {"ENV": "dev", "JWT_SECRET": secrets.token_hex(32), "USERS_FILE": ""}
    env |= {"PYTHONPATH": str(src)} if src else {}
    log = work / f"sidecar{'-baseline' if src else ''}.log"
    with process(cmd, f"{base}/ready", log, env):
        token = httpx.post(
            f"{base}/login", json={"username": "admin", "password": "123456"}
        ).json()["token"]
        yield base, token


def through_sidecar(work: Path, base: str, token: str) -> Result:
    """The origin's /predict, with a valid token, through the auth sidecar."""
    body = json.dumps(
        {
            "AMT_INCOME_TOTAL": 135000.0,
            "AMT_CREDIT": 513531.0,
            "DAYS_BIRTH": -15000.0,
            "AMT_GOODS_PRICE": 450000.0,
        }
    ).encode()
    return wrk(
        "ours /predict through the auth sidecar",
        f"{base}/predict",
        body,
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        work,
        connections=SINGLE_CONNECTIONS,
    )


def stock(work: Path, data: Path) -> list[Result]:
    port, grpc = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        str(REPO / "bench" / "stock_servers.py"),
        "sklearn",
        str(data),
        str(port),
        str(grpc),
    ]
    with process(cmd, f"{base}/v2/health/ready", work / "sklearn.log"):
        infer = f"{base}/v2/models/sklearn/infer"
        return [
            wrk(
                "stock KServe + sklearn v2 single row",
                infer,
                *v2_json_single("input-0"),
                work,
                connections=SINGLE_CONNECTIONS,
            ),
            wrk(
                "stock KServe + sklearn v2 binary 100,000 rows",
                infer,
                *v2_binary(100_000, "input-0"),
                work,
                connections=1,
            ),
        ]


def floor(work: Path) -> Result:
    port = free_port()
    cmd = [sys.executable, str(REPO / "bench" / "stock_servers.py"), "fastapi", str(port)]
    with process(cmd, f"http://127.0.0.1:{port}/ready", work / "fastapi.log"):
        return wrk(
            "FastAPI floor, single row",
            f"http://127.0.0.1:{port}/predict",
            *v1_single(),
            work,
            connections=SINGLE_CONNECTIONS,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, help="a source tree: its predictor too")
    parser.add_argument("--rounds", type=int, default=2, help="before/after rounds per line")
    args = parser.parse_args()
    if args.baseline_src and not (args.baseline_src / "agi_credit").is_dir():
        args.baseline_src = args.baseline_src / "src"
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    agi = [sys.executable, "-m", "agi_credit"]
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        data, store = work / "application_train.csv", work / "store"
        subprocess.run([*agi, "gen-data", "--rows", str(ROWS), "--out", str(data)], check=True)
        subprocess.run(
            [*agi, "train", "--data", str(data), "--store", str(store)],
            check=True,
            env={**os.environ, "MIN_AUC": "0.5"},
            capture_output=True,
        )
        pairs = (
            before_after(work, store, args.baseline_src, args.rounds) if args.baseline_src else []
        )
        compiled, cold, rss = ours(work, store, "auto")
        in_r, cold_r, rss_r = ours(work, store, "r")
        sklearn = stock(work, data)
        fastapi = floor(work)

    print(
        f"\nbench-serve: wrk -t1, {SECONDS} s per line, {SINGLE_CONNECTIONS} connections for "
        f"single rows, 1 for batches; {os.cpu_count()} cores; model trained on "
        f"{ROWS:,} synthetic rows\n"
    )
    print(f"{'':50}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'÷sklearn':>10}{'÷FastAPI':>10}")
    single_sklearn, batch_sklearn = sklearn
    for r in [*compiled, *in_r, *sklearn, fastapi]:
        # Single rows compare with both references; batches with sklearn's 100,000 rows.
        if "single row" in r.name or "sidecar" in r.name:
            ratios = f"{r.rps / single_sklearn.rps:10.2f}{r.rps / fastapi.rps:10.2f}"
        elif "100,000" in r.name:
            ratios = f"{r.rps / batch_sklearn.rps:10.2f}"
        else:
            ratios = ""
        print(f"{r.name:50}{r.rps:10.1f}{r.p50_ms:10.2f}{r.p99_ms:10.2f}{ratios}")
    if pairs:
        print(
            f"\nbefore: {args.baseline_src}, after: this tree; both running, alternating "
            f"line by line, the best of {args.rounds} rounds each"
        )
        print(f"{'':50}{'before':>10}{'after':>10}{'after÷before':>14}   req/s; p50 ms")
        for old, new in pairs:
            print(f"{new.name:50}{old.rps:10.1f}{new.rps:10.1f}{new.rps / old.rps:14.2f}")
            print(f"{'':50}{old.p50_ms:10.2f}{new.p50_ms:10.2f}{new.p50_ms / old.p50_ms:14.2f}")
    print(f"\ncold start to ready: {cold:.2f} s (compiled), {cold_r:.2f} s (R engine)")
    print(f"peak RSS: {rss:.0f} MB (compiled), {rss_r:.0f} MB (R engine)")
    v2_single = compiled[0]
    figures = {
        "p99 single-row v2 (ms)": v2_single.p99_ms,
        "100,000-row v2 binary p50 (ms)": compiled[3].p50_ms,
        "cold start to ready (s)": cold,
        # The R engine keeps R, recipes and its dependencies resident (~250 MB): reported above,
        # not held to the target, which is for the default, compiled engine.
        "peak RSS (MB)": rss,
    }
    missed = 0
    print()
    through = compiled[-1]  # through_sidecar comes last
    for label, ok in (
        (f"req/s >= 700: {through.rps:.0f}", through.rps >= 700),
        (f"p99 <= 20 ms: {through.p99_ms:.2f}", through.p99_ms <= 20),
    ):
        missed += not ok
        print(f"target /predict through the sidecar {label} {'PASS' if ok else 'MISS'}")
    ok = v2_single.rps >= single_sklearn.rps
    missed += not ok
    print(
        f"target single-row v2 req/s >= stock KServe + sklearn ({single_sklearn.rps:.0f}): "
        f"{v2_single.rps:.0f} {'PASS' if ok else 'MISS'}"
    )
    for name, limit in TARGETS.items():
        ok = figures[name] <= limit
        missed += not ok
        print(f"target {name} <= {limit:g}: {figures[name]:.2f} {'PASS' if ok else 'MISS'}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
