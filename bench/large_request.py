"""One `/predict` body at the size limit (#10, item 6): peak memory and time of the sidecar and
of the predictor behind it; and the figures the chart's memory limits are derived from (#16).

    .venv/bin/python bench/large_request.py [--rounds 3] [--concurrent N] [--rows 1000000]
        [--baseline-src DIR] [--json PATH]

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

`--concurrent N` runs the sidecar with MAX_CONCURRENT_PREDICTS=N and adds rounds of N such
bodies sent at once: the sidecar's peak over idle for N slots (N times one body's, at most,
when their conversions overlap), and the predictor's.

Then the bounds of the other parts, each with its RSS before, peak and peak - before:
- logins: 2 x PASSWORD_HASH_WORKERS at once (each argon2 check takes 64 MiB; the pool runs
  PASSWORD_HASH_WORKERS of them);
- the predictor alone, as tritonclient sends to it: v2 binary requests of 100,000 and
  `--rows` rows (1,000,000: the chart's predictor.maxBatchRows), and JSON bodies at
  MAX_REQUEST_BYTES that the pass-through routes let reach it (v2 tensors of `--rows` rows,
  their numbers as long as fits; v1 instances, the body above);
- the same binary requests to a second predictor scoring in R (SCORING=r), and its RSS at
  rest: a version that does not compile is scored there.

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
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from agi_credit.auth.v2_binary import encode_request
from agi_credit.settings import DEFAULT_MAX_REQUEST_BYTES

try:  # run as a script: bench/ is on sys.path
    from processes import agi, free_port, memory_kib, started
except ModuleNotFoundError:  # imported by the tests (tests/auth/test_large_requests.py)
    from bench.processes import agi, free_port, memory_kib, started

USER = "bench"
DATA_ROWS = 20_000
MAX_BATCH_ROWS = 1_000_000
"""The predictor's default, and the chart's predictor.maxBatchRows."""
SMALL_BATCH_ROWS = 100_000
ARGON2_MIB = 64
PASSWORD_HASH_WORKERS = 2
FEATURES = ("AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE")
WARM_UP = [
    {"AMT_INCOME_TOTAL": 5000, "AMT_CREDIT": 200000, "DAYS_BIRTH": -12000, "AMT_GOODS_PRICE": 1}
] * 10


def applicants(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """`n` applicants' incomes, credits, days of birth and goods prices, as a client has them."""
    income = rng.lognormal(11.9, 0.5, n).round(2)
    round_income = rng.random(n) < 0.6
    income[round_income] = income[round_income].round(-3)
    credit = rng.lognormal(13.0, 0.7, n).round(1)
    goods = (credit * rng.uniform(0.8, 1.0, n)).round(-3)
    days = -rng.integers(7500, 25000, n)
    return income, credit, days, goods


def realistic_body(size: int, *, seed: int = 20261126) -> tuple[bytes, int]:
    """A /predict batch of exactly `size` bytes (JSON, trailing spaces) and its row count."""
    rng = np.random.default_rng(seed)
    n = size // 90 + 1000  # a row takes ~100 bytes: more than enough, trimmed below
    income, credit, days, goods = applicants(n, rng)
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


def binary_request(rows: int, *, seed: int = 20261208) -> tuple[bytes, dict[str, str]]:
    """A v2 infer request of `rows` applicants, FP64 tensors in the binary extension (as
    tritonclient and the sidecar send them): its body and headers."""
    values = applicants(rows, np.random.default_rng(seed))
    columns = {
        name: array("d", column.astype(np.float64))
        for name, column in zip(FEATURES, values, strict=True)
    }
    return encode_request(columns, request_id=f"bench-{rows}")


def v2_json_body(size: int, rows: int, *, seed: int = 20261208) -> bytes:
    """A v2 JSON infer request of `rows` applicants in exactly `size` bytes: their numbers
    with as many decimals as fit (at least 0), then spaces."""
    values = applicants(rows, np.random.default_rng(seed))
    noise = np.random.default_rng(seed + 1).random((len(FEATURES), rows))
    for decimals in range(10, -1, -1):
        inputs = [
            {
                "name": name,
                "shape": [rows],
                "datatype": "FP64",
                "data": (column + extra).round(decimals),
            }
            for name, column, extra in zip(FEATURES, values, noise, strict=True)
        ]
        body = orjson.dumps({"inputs": inputs}, option=orjson.OPT_SERIALIZE_NUMPY)
        if len(body) <= size:
            return body + b" " * (size - len(body))
    raise ValueError(f"{rows:,} rows do not fit in {size:,} bytes")


def v1_json_body(size: int) -> tuple[bytes, int]:
    """`{"instances": [...]}` of the /predict body's applicants, in exactly `size` bytes."""
    head, tail = b'{"instances": ', b"}"
    body, rows = realistic_body(size - len(head) - len(tail))
    return head + body + tail, rows


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
    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(httpx.post(f"{url}/predict", content=body, headers=headers, timeout=600))

    result = measured(pids, send)
    (response,) = answers
    assert response.status_code == 200, response.text[:500]
    result["answer_bytes"] = len(response.content)
    result["digest"] = hash(response.content)
    return result


def measured(pids: dict[str, int], send: Callable[[], Any]) -> dict[str, Any]:
    """`send()` between a reset of the peak RSS of `pids` and its reading: RSS before, peak
    and peak - before of each process, and the seconds it took."""
    time.sleep(0.5)
    before = {}
    for name, pid in pids.items():
        reset_peak(pid)
        before[name] = memory_mb(pid)["VmRSS"]
    t0 = time.perf_counter()
    send()
    result: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 3)}
    for name, pid in pids.items():
        peak = memory_mb(pid)["VmHWM"]
        result[name] = {
            "rss_before_mb": round(before[name], 1),
            "peak_mb": round(peak, 1),
            "delta_mb": round(peak - before[name], 1),
        }
    return result


def concurrent_round(
    url: str, token: str, body: bytes, at_once: int, pids: dict[str, int]
) -> dict[str, Any]:
    """`at_once` bodies sent at the same time (one thread each): every answer a 200, all
    equal; the peaks per process, and per body."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    warm = httpx.post(f"{url}/predict", json=WARM_UP, headers=headers, timeout=60)
    assert warm.status_code == 200, warm.text
    answers: list[httpx.Response] = []

    def send() -> None:
        def post(_: int) -> httpx.Response:
            return httpx.post(f"{url}/predict", content=body, headers=headers, timeout=600)

        with ThreadPoolExecutor(max_workers=at_once) as pool:
            answers.extend(pool.map(post, range(at_once)))

    result = measured(pids, send)
    for response in answers:
        assert response.status_code == 200, response.text[:500]
    result["answers_equal"] = len({response.content for response in answers}) == 1
    for name in pids:
        result[name]["delta_per_body_mb"] = round(result[name]["delta_mb"] / at_once, 1)
    result["digest"] = hash(answers[0].content)
    return result


def logins_round(url: str, password: str, pid: int, at_once: int) -> dict[str, Any]:
    """`at_once` logins at the same time: the argon2 pool's peak (the rest wait their turn)."""

    def send() -> None:
        def login(_: int) -> int:
            credentials = {"username": USER, "password": password}
            return httpx.post(f"{url}/login", json=credentials, timeout=60).status_code

        with ThreadPoolExecutor(max_workers=at_once) as pool:
            statuses = list(pool.map(login, range(at_once)))
        assert statuses == [200] * at_once, statuses

    return {"logins": at_once, **measured({"sidecar": pid}, send)}


def infer_round(
    predictor_url: str, pid: int, body: bytes, headers: dict[str, str], path: str
) -> dict[str, Any]:
    """One request straight to the predictor: a 200 whatever its size."""
    answer: list[httpx.Response] = []
    url = f"{predictor_url}{path}"
    result = measured(
        {"predictor": pid},
        lambda: answer.append(httpx.post(url, content=body, headers=headers, timeout=900)),
    )
    assert answer[0].status_code == 200, answer[0].text[:500]
    return {"body_bytes": len(body), **result}


@contextmanager
def predictor_process(
    work: Path, name: str, store: Path, env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`agi-credit serve` on free ports until ready: its URL and process."""
    http, grpc = free_port(), free_port()
    url = f"http://127.0.0.1:{http}"
    command = ["serve", "--store", str(store), "--http-port", str(http), "--grpc-port", str(grpc)]
    with started(work, name, command, f"{url}/v2/health/ready", env) as proc:
        yield url, proc


def predictor_alone(url: str, pid: int, rows: int, *, body_bytes: int) -> dict[str, Any]:
    """The predictor's peaks for binary requests of `SMALL_BATCH_ROWS` and `rows` rows, and
    for v2 and v1 JSON bodies of `body_bytes`."""
    infer = "/v2/models/agi-credit/infer"
    time.sleep(1)
    out: dict[str, Any] = {"rss_idle_mb": round(memory_mb(pid)["VmRSS"], 1)}
    for count in sorted({SMALL_BATCH_ROWS, rows}):
        body, headers = binary_request(count)
        out[f"binary_{count}_rows"] = infer_round(url, pid, body, headers, infer)
        print(
            f"predictor, binary, {count:,} rows: {json.dumps(out[f'binary_{count}_rows'])}",
            flush=True,
        )
        del body
    if body_bytes:
        json_headers = {"Content-Type": "application/json"}
        v2 = v2_json_body(body_bytes, rows)
        out["v2_json_at_the_limit"] = {
            "rows": rows,
            **infer_round(url, pid, v2, json_headers, infer),
        }
        del v2
        v1, v1_rows = v1_json_body(body_bytes)
        result = infer_round(url, pid, v1, json_headers, "/v1/models/agi-credit:predict")
        out["v1_json_at_the_limit"] = {"rows": v1_rows, **result}
        for kind in ("v2_json_at_the_limit", "v1_json_at_the_limit"):
            print(f"predictor, {kind}: {json.dumps(out[kind])}", flush=True)
    return out


def summary(rounds: list[dict[str, Any]], at_rest: dict[str, float]) -> dict[str, Any]:
    """The largest of each figure over the rounds; and the highest peak over the process's
    RSS at rest, before its first large request (what it keeps of one, a later round's RSS
    before, is the allocator's and is used again)."""
    out: dict[str, Any] = {"seconds_median": statistics.median(r["seconds"] for r in rounds)}
    for name in ("sidecar", "predictor"):
        keys = [key for key in rounds[0][name] if key.endswith("_mb")]
        out[name] = {key: max(r[name][key] for r in rounds) for key in keys}
        out[name]["peak_over_rest_mb"] = round(out[name]["peak_mb"] - at_rest[name], 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    parser.add_argument(
        "--concurrent", type=int, default=0, help="N bodies at once (MAX_CONCURRENT_PREDICTS=N)"
    )
    parser.add_argument("--rows", type=int, default=MAX_BATCH_ROWS, help="the predictor's batch")
    parser.add_argument("--baseline-src", type=Path, help="a source tree: its sidecar too")
    parser.add_argument("--json", type=Path, help="write the results there too")
    args = parser.parse_args(argv)

    body, rows = realistic_body(args.bytes)
    print(f"body: {len(body):,} bytes, {rows:,} rows", flush=True)
    predictor_env = {
        "MAX_BATCH_ROWS": str(max(args.rows, MAX_BATCH_ROWS)),
        "MAX_REQUEST_BYTES": str(max(args.bytes, DEFAULT_MAX_REQUEST_BYTES)),
    }
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        data, store, users = work / "application_train.csv", work / "store", work / "users.yaml"
        agi(work, "gen-data", "--rows", str(DATA_ROWS), "--out", data)
        agi(work, "train", "--data", data, "--store", store, env={"MIN_AUC": "0"})
        password = secrets.token_urlsafe(18)
        agi(work, "users", "add", USER, "--file", users, "--password-stdin", stdin=password + "\n")
        predictor_url, predictor = stack.enter_context(
            predictor_process(work, "predictor", store, predictor_env)
        )
        predictor_at_rest = memory_mb(predictor.pid)["VmRSS"]
        secret = secrets.token_hex(32)
        sources = {"after": None} if args.baseline_src is None else {
            "before": args.baseline_src, "after": None
        }  # fmt: skip
        sidecars: dict[str, tuple[str, int]] = {}
        at_rest: dict[str, dict[str, float]] = {}
        for label, source in sources.items():
            port = free_port()
            env = {
                "ENV": "prod",
                "JWT_SECRET": secret,
                "USERS_FILE": str(users),
                "PASSWORD_HASH_WORKERS": str(PASSWORD_HASH_WORKERS),
            }
            if args.concurrent:
                env["MAX_CONCURRENT_PREDICTS"] = str(args.concurrent)
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
        for label, (url, pid) in sidecars.items():  # at rest: after a login and a small body
            headers = {"Authorization": f"Bearer {token}"}
            warm = httpx.post(f"{url}/predict", json=WARM_UP, headers=headers, timeout=60)
            assert warm.status_code == 200, warm.text
            time.sleep(0.5)
            rest = {"sidecar": memory_mb(pid)["VmRSS"], "predictor": predictor_at_rest}
            at_rest[label] = rest
        results: dict[str, list[dict[str, Any]]] = {label: [] for label in sidecars}
        for i in range(args.rounds):
            for label, (url, pid) in sidecars.items():
                pids = {"sidecar": pid, "predictor": predictor.pid}
                result = one_round(url, token, body, pids)
                results[label].append(result)
                print(f"round {i + 1} {label}: {json.dumps(result)}", flush=True)
        url, pid = sidecars["after"]
        pids = {"sidecar": pid, "predictor": predictor.pid}
        concurrent: list[dict[str, Any]] = []
        for i in range(args.rounds if args.concurrent else 0):
            result = concurrent_round(url, token, body, args.concurrent, pids)
            concurrent.append(result)
            print(f"round {i + 1}, {args.concurrent} at once: {json.dumps(result)}", flush=True)
        logins = logins_round(url, password, pid, 2 * PASSWORD_HASH_WORKERS)
        print(f"logins: {json.dumps(logins)}", flush=True)
        compiled = predictor_alone(predictor_url, predictor.pid, args.rows, body_bytes=args.bytes)
        compiled["rss_at_start_mb"] = round(predictor_at_rest, 1)
        with predictor_process(work, "predictor-r", store, {**predictor_env, "SCORING": "r"}) as (
            r_url,
            r_proc,
        ):
            in_r = predictor_alone(r_url, r_proc.pid, args.rows, body_bytes=args.bytes)
    digests = {r.pop("digest") for rounds in results.values() for r in rounds}
    digests |= {r.pop("digest") for r in concurrent}
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "body_bytes": len(body),
        "rows": rows,
        "answers_equal": len(digests) == 1 and all(r["answers_equal"] for r in concurrent),
        **{
            label: {
                "summary": summary(r, at_rest[label]),
                "rss_at_rest_mb": {name: round(mb, 1) for name, mb in at_rest[label].items()},
                "rounds": r,
            }
            for label, r in results.items()
        },
        "logins": logins,
        "predictor_compiled": compiled,
        "predictor_r": in_r,
    }
    if concurrent:
        report["concurrent"] = {
            "at_once": args.concurrent,
            "summary": summary(concurrent, at_rest["after"]),
            "rounds": concurrent,
        }
    for label in results:
        s, rest = report[label]["summary"], at_rest[label]
        print(
            f"{label}: at rest, sidecar {rest['sidecar']:.0f} MB, predictor "
            f"{rest['predictor']:.0f} MB (peaks are also given over these)"
        )
        print(
            f"{label}: {s['seconds_median']:.2f} s per request (median); "
            f"sidecar peak {s['sidecar']['peak_mb']:.0f} MB "
            f"(+{s['sidecar']['delta_mb']:.0f} MB over {s['sidecar']['rss_before_mb']:.0f}; "
            f"+{s['sidecar']['peak_over_rest_mb']:.0f} over rest); "
            f"predictor peak {s['predictor']['peak_mb']:.0f} MB "
            f"(+{s['predictor']['delta_mb']:.0f} MB over {s['predictor']['rss_before_mb']:.0f}; "
            f"+{s['predictor']['peak_over_rest_mb']:.0f} over rest)"
        )
    if concurrent:
        c = report["concurrent"]["summary"]
        print(
            f"{args.concurrent} bodies at once: sidecar peak {c['sidecar']['peak_mb']:.0f} MB "
            f"(+{c['sidecar']['peak_over_rest_mb']:.0f} over rest, "
            f"+{c['sidecar']['peak_over_rest_mb'] / args.concurrent:.0f} a body); "
            f"predictor peak {c['predictor']['peak_mb']:.0f} MB "
            f"(+{c['predictor']['peak_over_rest_mb']:.0f} over rest)"
        )
    print(
        f"{logins['logins']} logins at once ({PASSWORD_HASH_WORKERS} argon2 workers of "
        f"{ARGON2_MIB} MiB): sidecar +{logins['sidecar']['delta_mb']:.0f} MB"
    )
    for engine, figures in (("compiled", compiled), ("R", in_r)):
        parts = [f"predictor ({engine}) {figures['rss_idle_mb']:.0f} MB before"]
        for key, value in figures.items():
            if isinstance(value, dict):
                parts.append(
                    f"{key}: +{value['predictor']['delta_mb']:.0f} MB "
                    f"(peak {value['predictor']['peak_mb']:.0f}, {value['seconds']:.1f} s)"
                )
        print("; ".join(parts))
    print(f"answers equal: {report['answers_equal']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["answers_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
