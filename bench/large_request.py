"""One `/predict` body at the size limit (#10, item 6): peak memory and time of the sidecar and
of the predictor behind it.

    .venv/bin/python bench/large_request.py [--rounds 3] [--baseline-src DIR] [--json PATH]

Starts on loopback, in a temporary directory: synthetic data (20,000 rows), `agi-credit
train` (v1, compiled), `agi-credit users add`, the predictor (`agi-credit serve`) and the
sidecar (`agi-credit auth`, ENV=prod), each a process of its own. The body is a list of
applicants as a client writes them (the model's four features; incomes and prices with
cents or round, days as integers), `json.dumps` with its default separators, padded with
spaces to exactly MAX_REQUEST_BYTES (64 MiB: about 640,000 rows).

Each round: a small /predict first (warm-up), then the peak RSS of both processes is reset
(`/proc/PID/clear_refs` 5: VmHWM becomes VmRSS), the big body is sent, and VmHWM is read
once it is answered. Reported per process: RSS before, peak, and peak - before; and the
client's time for the request.

`--baseline-src DIR` measures a second sidecar too, run from another source tree (its
`src/`, e.g. `git archive <commit> src | tar -x -C DIR`), in front of the same predictor,
with the same body, rounds alternating: before and after in one run. The answers of both
must be equal.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from agi_credit.settings import DEFAULT_MAX_REQUEST_BYTES

try:  # run as a script: bench/ is on sys.path
    from processes import agi, free_port, memory_kib, started
except ModuleNotFoundError:  # imported by the tests (tests/auth/test_large_requests.py)
    from bench.processes import agi, free_port, memory_kib, started

USER = "bench"
DATA_ROWS = 20_000
WARM_UP = [
    {"AMT_INCOME_TOTAL": 5000, "AMT_CREDIT": 200000, "DAYS_BIRTH": -12000, "AMT_GOODS_PRICE": 1}
] * 10


def realistic_body(size: int, *, seed: int = 20261126) -> tuple[bytes, int]:
    """A /predict batch of exactly `size` bytes (JSON, trailing spaces) and its row count."""
    rng = np.random.default_rng(seed)
    n = size // 90 + 1000  # a row takes ~100 bytes: more than enough, trimmed below
    income = rng.lognormal(11.9, 0.5, n).round(2)
    round_income = rng.random(n) < 0.6
    income[round_income] = income[round_income].round(-3)
    credit = rng.lognormal(13.0, 0.7, n).round(1)
    goods = (credit * rng.uniform(0.8, 1.0, n)).round(-3)
    days = -rng.integers(7500, 25000, n)
    rows = [
        {
            "AMT_INCOME_TOTAL": float(i) if i % 1 else int(i),
            "AMT_CREDIT": float(c),
            "DAYS_BIRTH": int(d),
            "AMT_GOODS_PRICE": float(g),
        }
        for i, c, d, g in zip(income, credit, days, goods, strict=True)
    ]
    encoded = [json.dumps(row).encode() for row in rows]
    total, count = 2, 0  # "[" and "]"
    for row in encoded:
        if total + len(row) + 2 > size:
            break
        total += len(row) + (2 if count else 0)  # ", " between rows
        count += 1
    body = b"[" + b", ".join(encoded[:count]) + b"]"
    return body + b" " * (size - len(body)), count


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB (10^6 bytes)."""
    return {name: kib * 1024 / 1e6 for name, kib in memory_kib(pid).items()}


def reset_peak(pid: int) -> None:
    """VmHWM := VmRSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def one_round(url: str, token: str, body: bytes, pids: dict[str, int]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    warm = httpx.post(f"{url}/predict", json=WARM_UP, headers=headers, timeout=60)
    assert warm.status_code == 200, warm.text
    time.sleep(0.5)
    before = {}
    for name, pid in pids.items():
        reset_peak(pid)
        before[name] = memory_mb(pid)["VmRSS"]
    t0 = time.perf_counter()
    response = httpx.post(f"{url}/predict", content=body, headers=headers, timeout=600)
    seconds = time.perf_counter() - t0
    assert response.status_code == 200, response.text[:500]
    result: dict[str, Any] = {"seconds": round(seconds, 3), "answer_bytes": len(response.content)}
    for name, pid in pids.items():
        peak = memory_mb(pid)["VmHWM"]
        result[name] = {
            "rss_before_mb": round(before[name], 1),
            "peak_mb": round(peak, 1),
            "delta_mb": round(peak - before[name], 1),
        }
    result["digest"] = hash(response.content)
    return result


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds_median": statistics.median(r["seconds"] for r in rounds)}
    for name in ("sidecar", "predictor"):
        out[name] = {
            key: max(r[name][key] for r in rounds)
            for key in ("rss_before_mb", "peak_mb", "delta_mb")
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    parser.add_argument("--baseline-src", type=Path, help="a source tree: its sidecar too")
    parser.add_argument("--json", type=Path, help="write the results there too")
    args = parser.parse_args(argv)

    body, rows = realistic_body(args.bytes)
    print(f"body: {len(body):,} bytes, {rows:,} rows", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        data, store, users = work / "application_train.csv", work / "store", work / "users.yaml"
        agi(work, "gen-data", "--rows", str(DATA_ROWS), "--out", data)
        agi(work, "train", "--data", data, "--store", store, env={"MIN_AUC": "0"})
        password = secrets.token_urlsafe(18)
        agi(work, "users", "add", USER, "--file", users, "--password-stdin", stdin=password + "\n")
        http, grpc = free_port(), free_port()
        predictor_url = f"http://127.0.0.1:{http}"
        predictor = stack.enter_context(
            started(
                work,
                "predictor",
                [
                    "serve",
                    "--store",
                    str(store),
                    "--http-port",
                    str(http),
                    "--grpc-port",
                    str(grpc),
                ],
                f"{predictor_url}/v2/health/ready",
                {},
            )
        )
        secret = secrets.token_hex(32)
        sources = {"after": None} if args.baseline_src is None else {
            "before": args.baseline_src, "after": None
        }  # fmt: skip
        sidecars: dict[str, tuple[str, int]] = {}
        for label, source in sources.items():
            port = free_port()
            env = {"ENV": "prod", "JWT_SECRET": secret, "USERS_FILE": str(users)}
            if source is not None:
                env["PYTHONPATH"] = str(source.resolve() / "src")
            proc = stack.enter_context(
                started(
                    work,
                    f"sidecar-{label}",
                    ["auth", "--upstream", predictor_url, "--port", str(port), "--grpc-port", "0"],
                    f"http://127.0.0.1:{port}/ready",
                    env,
                )
            )
            sidecars[label] = (f"http://127.0.0.1:{port}", proc.pid)
        url = next(iter(sidecars.values()))[0]
        login = httpx.post(f"{url}/login", json={"username": USER, "password": password})
        token = login.json()["token"]
        results: dict[str, list[dict[str, Any]]] = {label: [] for label in sidecars}
        for i in range(args.rounds):
            for label, (url, pid) in sidecars.items():
                pids = {"sidecar": pid, "predictor": predictor.pid}
                result = one_round(url, token, body, pids)
                results[label].append(result)
                print(f"round {i + 1} {label}: {json.dumps(result)}", flush=True)
    digests = {r.pop("digest") for rounds in results.values() for r in rounds}
    report = {
        "date": dt.date.today().isoformat(),
        "body_bytes": len(body),
        "rows": rows,
        "answers_equal": len(digests) == 1,
        **{label: {"summary": summary(r), "rounds": r} for label, r in results.items()},
    }
    for label in results:
        s = report[label]["summary"]
        print(
            f"{label}: {s['seconds_median']:.2f} s per request (median); "
            f"sidecar peak {s['sidecar']['peak_mb']:.0f} MB "
            f"(+{s['sidecar']['delta_mb']:.0f} MB over {s['sidecar']['rss_before_mb']:.0f}); "
            f"predictor peak {s['predictor']['peak_mb']:.0f} MB "
            f"(+{s['predictor']['delta_mb']:.0f} MB over {s['predictor']['rss_before_mb']:.0f})"
        )
    print(f"answers equal: {report['answers_equal']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["answers_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
