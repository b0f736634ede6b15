"""Load and soak of the whole stack while versions change (`make bench-soak`).

Starts on loopback, with free ports and a fresh store in a temporary directory: synthetic
data (20,000 rows), `agi-credit train` (v1), the predictor (`agi-credit serve`) and the
JWT sidecar (`agi-credit auth`, ENV=prod, a generated secret and a users file made by
`agi-credit users add`), each a process of its own. Then, for `--seconds` (600) after a
warm-up, clients in two child processes send a steady, paced load through the sidecar:

- REST (`--rest-clients` threads): `/predict` with one applicant or a list, and
  `/v2/models/agi-credit/infer` (JSON tensors), Bearer token;
- gRPC (`--grpc-clients` threads, tritonclient.grpc): `ModelInfer` with `authorization`
  metadata. tritonclient.grpc and kserve register the same protobuf names, so the clients
  run in children that import neither kserve nor agi_credit, and report one JSON line per
  request on stdout.

Batches of 1, 10 and 100 rows are mixed (60/30/10 %). Meanwhile the store is governed as an
operator would: at 1/4 of the run `agi-credit train` registers v2 (with MIN_AUC=1.0, so
the gate keeps it a candidate: deterministic), at 1/2 `agi-credit promote v2`, at 3/4
`agi-credit rollback` (back to v1). Each command's start and end are recorded
(time.monotonic(): CLOCK_MONOTONIC, the same clock in every process of the machine, so the
children's request times compare with the parent's).

Every answer names the version that scored it (`model_version` of /predict, of the v2
response, of ModelInferResponse), with the request's start t0 and end t1. Two checks:

1. Against the predictor's observed state. A monitor thread asks the predictor's own
   `/v2/models/agi-credit` for `parameters.current_version` every 50 ms (poll i sent at a_i,
   answered at b_i). If polls i-1 and i saw different versions, the switch happened inside
   (a_{i-1}, b_i). A run of polls i..j that saw version V makes V possibly current from
   a_{i-1} to b_{j+1} (from the start, or to the end, for the first and last runs: the
   stack starts with only v1, and the monitor runs before the first and after the last
   request). A request answered by V passes when [t0, t1] meets one of V's intervals: the
   predictor resolves the version once, at some moment inside [t0, t1].
2. Against the governance commands. V is current from the start of the command that made
   it current until its successor is in place: the end of the command that replaced it,
   or, if later, the moment the predictor was first seen serving the successor (loaded:
   v2 is loaded in the background after `train` registers it, a compiled version after
   its parity run in a child Rscript, some seconds on a busy machine), plus RELOAD_LAG_S
   (2 s: the predictor's RELOAD_INTERVAL of 0.25 s, reading metadata.json and the swap,
   with room for a busy machine). Also: the observed sequence of current versions is
   v1, v2, v1 (registering v2 changes nothing), and each observed switch lies within
   [command start, that in-place moment + RELOAD_LAG_S].

Reported (printed; `--json PATH` writes it all): requests per protocol and kind, errors
(any non-200, gRPC error, malformed answer or exception; must be 0), p50/p99 latency per
minute and protocol (as the clients measure it, through the sidecar), answers per version
per minute, the observed switches and command times, and RSS (/proc/PID/status VmRSS) and
open file descriptors (/proc/PID/fd) of the predictor and the sidecar, sampled every 5 s,
compared at the end of the warm-up and at the end of the load, both under the same load.

Bounds on growth, per process: RSS end <= start * 1.2 + 50 MB, fds end <= start + 10.
Honestly, what that can catch: a leak of ~100 bytes per request would add ~7 MB over the
~70,000 requests of a 10-minute run at the default rate, far inside the bound; the bound
is there for leaks per request of kilobytes (a response or a body kept), per connection or
per version load, and the per-minute RSS column shows the trend of slower ones. fds: the
clients' connections are open at both samples; a leaked socket or file per request, per
token or per reload would pass 10 within seconds.

Exit status 0 only when there were no errors, both version checks pass, every command
succeeded and growth is within the bounds; otherwise 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np
from processes import agi, clean_env, free_port, memory_kib, started, stop

REPO = Path(__file__).resolve().parents[1]
MODEL = "agi-credit"
FEATURES = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]
DATA_ROWS = 20_000
BATCHES = {1: 0.6, 10: 0.3, 100: 0.1}
"""Rows per request and their share of the requests."""
VARIANTS = 8
"""Distinct prebuilt bodies per batch size, so the clients spend their time waiting."""
MONITOR_PERIOD_S = 0.05
SAMPLE_PERIOD_S = 5.0
RELOAD_LAG_S = 2.0
RSS_GROWTH = (1.2, 50.0)
"""RSS end <= start * 1.2 + 50 MB."""
FD_GROWTH = 10
TOKEN_REFRESH_S = 300.0
"""Clients log in again after this long (tokens last 15 minutes)."""
USER = "soak"
PROTOCOLS = ("REST /predict", "REST v2 infer", "gRPC v2 infer")

# --- the clients (child processes) ---------------------------------------------------------


def applicants(rng: np.random.Generator, n: int) -> dict[str, list[float]]:
    return {
        "AMT_INCOME_TOTAL": rng.lognormal(11.9, 0.5, n).round(2).tolist(),
        "AMT_CREDIT": rng.lognormal(13.0, 0.7, n).round(2).tolist(),
        "DAYS_BIRTH": (-rng.uniform(7500, 25000, n)).round().tolist(),
        "AMT_GOODS_PRICE": rng.lognormal(12.9, 0.7, n).round(2).tolist(),
    }


class Emitter:
    """One JSON line per request on stdout: [protocol, rows, t0, t1, version, error]."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(
        self, protocol: str, rows: int, t0: float, t1: float, version: str | None, error: str
    ) -> None:
        line = json.dumps([protocol, rows, t0, t1, version, error[:300] or None])
        with self.lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


class Token:
    """A bearer token, fetched again every TOKEN_REFRESH_S; shared by a child's threads."""

    def __init__(self, login_url: str, password: str) -> None:
        self.login_url, self.password = login_url, password
        self.lock = threading.Lock()
        self.value, self.fetched = "", -1e18

    def get(self) -> str:
        with self.lock:
            if time.monotonic() - self.fetched > TOKEN_REFRESH_S:
                response = httpx.post(
                    self.login_url, json={"username": USER, "password": self.password}, timeout=60
                )
                response.raise_for_status()
                self.value, self.fetched = response.json()["token"], time.monotonic()
            return self.value


def paced(rate: float, until: float, seed: int) -> Iterator[int]:
    """Batch sizes at `rate` per second until `until`; behind schedule, no burst to catch up."""
    rnd = random.Random(seed)
    sizes, weights = list(BATCHES), list(BATCHES.values())
    interval, next_at = 1.0 / rate, time.monotonic() + rnd.random() / rate
    while True:
        now = time.monotonic()
        if now >= until:
            return
        if next_at > now:
            time.sleep(next_at - now)
            if next_at >= until:
                return
        next_at = max(next_at + interval, time.monotonic())
        yield rnd.choices(sizes, weights)[0]


def rest_client(config: dict[str, Any], index: int, emit: Emitter, token: Token) -> None:
    rng = np.random.default_rng(index)
    predict: dict[int, list[bytes]] = {}
    infer: dict[int, list[bytes]] = {}
    for rows in BATCHES:
        predict[rows], infer[rows] = [], []
        for _ in range(VARIANTS):
            cols = applicants(rng, rows)
            objects = [{f: cols[f][i] for f in FEATURES} for i in range(rows)]
            predict[rows].append(json.dumps(objects[0] if rows == 1 else objects).encode())
            tensors = [
                {"name": f, "shape": [rows], "datatype": "FP64", "data": cols[f]} for f in FEATURES
            ]
            infer[rows].append(json.dumps({"inputs": tensors}).encode())
    base = config["url"]
    choose = random.Random(index)
    with httpx.Client(base_url=base, timeout=30) as client:
        for rows in paced(config["rate"], config["until"], index):
            use_predict = choose.random() < 0.5
            protocol = PROTOCOLS[0] if use_predict else PROTOCOLS[1]
            body = choose.choice(predict[rows] if use_predict else infer[rows])
            path = "/predict" if use_predict else f"/v2/models/{MODEL}/infer"
            headers = {"Authorization": f"Bearer {token.get()}", "Content-Type": "application/json"}
            version, error = None, ""
            t0 = time.monotonic()
            try:
                response = client.post(path, content=body, headers=headers)
                t1 = time.monotonic()
                if response.status_code != 200:
                    error = f"HTTP {response.status_code}: {response.text[:200]}"
                else:
                    answer = response.json()
                    version, error = _rest_version(answer, rows, use_predict)
            except Exception as exc:  # every failure is a counted error
                t1, error = time.monotonic(), f"{type(exc).__name__}: {exc}"
            emit(protocol, rows, t0, t1, version, error)


def _rest_version(answer: Any, rows: int, origin: bool) -> tuple[str | None, str]:
    """The version that answered, or an error when the answer is not what was asked."""
    if origin:
        items = [answer] if rows == 1 and isinstance(answer, dict) else answer
        if not isinstance(items, list) or len(items) != rows:
            return None, f"expected {rows} predictions"
        versions = {item.get("model_version") for item in items}
    else:
        outputs = {o["name"]: o["data"] for o in answer.get("outputs", [])}
        if len(outputs.get("prob_default", [])) != rows:
            return None, f"expected {rows} prob_default values"
        versions = {answer.get("model_version")}
    if len(versions) != 1 or not isinstance(version := versions.pop(), str):
        return None, f"answered by versions {sorted(map(str, versions))}"
    return version, ""


def grpc_client(config: dict[str, Any], index: int, emit: Emitter, token: Token) -> None:
    import tritonclient.grpc as triton  # here only: see the module docstring

    rng = np.random.default_rng(1000 + index)
    inputs: dict[int, list[list[Any]]] = {}
    for rows in BATCHES:
        inputs[rows] = []
        for _ in range(VARIANTS):
            cols = applicants(rng, rows)
            tensors = []
            for f in FEATURES:
                tensor = triton.InferInput(f, [rows], "FP64")
                tensor.set_data_from_numpy(np.array(cols[f], dtype=np.float64))
                tensors.append(tensor)
            inputs[rows].append(tensors)
    choose = random.Random(1000 + index)
    client = triton.InferenceServerClient(config["target"])
    try:
        for rows in paced(config["rate"], config["until"], 1000 + index):
            tensors = choose.choice(inputs[rows])
            # tritonclient adds its own entries to the headers it is given: a new dict each time
            headers = {"authorization": f"Bearer {token.get()}"}
            version, error = None, ""
            t0 = time.monotonic()
            try:
                result = client.infer(MODEL, tensors, headers=headers, client_timeout=30)
                t1 = time.monotonic()
                prob = result.as_numpy("prob_default")
                version = result.get_response().model_version or None
                if prob is None or prob.shape != (rows,):
                    version, error = None, f"expected {rows} prob_default values"
                elif version is None:
                    error = "no model_version in the response"
            except Exception as exc:  # every failure is a counted error
                t1, error = time.monotonic(), f"{type(exc).__name__}: {exc}"
            emit(PROTOCOLS[2], rows, t0, t1, version, error)
    finally:
        client.close()


def run_clients(kind: str) -> int:
    """A child: the config as JSON on stdin (it holds the password), threads until `until`."""
    config = json.load(sys.stdin)
    emit, token = Emitter(), Token(config["login"], config["password"])
    token.get()
    target: Callable[[dict[str, Any], int, Emitter, Token], None] = (
        rest_client if kind == "rest" else grpc_client
    )
    threads = [
        threading.Thread(target=target, args=(config, i, emit, token), daemon=True)
        for i in range(config["clients"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


# --- the stack, the monitor and the samplers (parent) ---------------------------------------


@dataclass
class Stack:
    work: Path
    store: Path
    data: Path
    password: str
    predictor: subprocess.Popen[bytes]
    sidecar: subprocess.Popen[bytes]
    predictor_url: str
    sidecar_url: str
    sidecar_grpc: str


@contextmanager
def stack(work: Path) -> Iterator[Stack]:
    data, store, users = work / "application_train.csv", work / "store", work / "users.yaml"
    agi(work, "gen-data", "--rows", str(DATA_ROWS), "--out", data)
    # MIN_AUC=0: the first version is promoted whatever its AUC on this small sample.
    agi(work, "train", "--data", data, "--store", store, env={"MIN_AUC": "0"})
    password = secrets.token_urlsafe(18)
    agi(work, "users", "add", USER, "--file", users, "--password-stdin", stdin=password + "\n")
    http, grpc, auth, auth_grpc = free_port(), free_port(), free_port(), free_port()
    predictor_url = f"http://127.0.0.1:{http}"
    serve = ["serve", "--store", str(store), "--http-port", str(http), "--grpc-port", str(grpc)]
    with ExitStack() as stops:
        predictor = stops.enter_context(
            started(
                work,
                "predictor",
                serve,
                f"{predictor_url}/v2/health/ready",
                {"PREDICTOR_HOST": "127.0.0.1"},
            )
        )
        sidecar_args = ["auth", "--upstream", predictor_url, "--port", str(auth)]
        sidecar_args += ["--grpc-port", str(auth_grpc), "--grpc-upstream", f"127.0.0.1:{grpc}"]
        sidecar = stops.enter_context(
            started(
                work,
                "sidecar",
                sidecar_args,
                f"http://127.0.0.1:{auth}/ready",
                {"ENV": "prod", "JWT_SECRET": secrets.token_hex(32), "USERS_FILE": str(users)},
            )
        )
        yield Stack(
            work,
            store,
            data,
            password,
            predictor,
            sidecar,
            predictor_url,
            f"http://127.0.0.1:{auth}",
            f"127.0.0.1:{auth_grpc}",
        )


@dataclass
class Poll:
    sent: float
    answered: float
    current: str | None
    served: tuple[str, ...]


class Monitor(threading.Thread):
    """Polls the predictor's model metadata: which version is current, which are served."""

    def __init__(self, predictor_url: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{predictor_url}/v2/models/{MODEL}"
        self.polls: list[Poll] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.halt.is_set():
                sent = time.monotonic()
                try:
                    response = client.get(self.url)
                    answered = time.monotonic()
                    response.raise_for_status()
                    parameters = response.json()["parameters"]
                    served = tuple(
                        v
                        for v, info in parameters["model_versions"].items()
                        if info["status"] == "serving"
                    )
                    self.polls.append(Poll(sent, answered, parameters["current_version"], served))
                except Exception as exc:  # a failed poll is a counted error
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                self.halt.wait(max(0.0, MONITOR_PERIOD_S - (time.monotonic() - sent)))

    def runs(self) -> list[tuple[str | None, float, float, int, int]]:
        """(version, possibly current from, possibly current until, first poll, last poll),
        in order; see the module docstring."""
        polls, out = self.polls, []
        i = 0
        while i < len(polls):
            j = i
            while j + 1 < len(polls) and polls[j + 1].current == polls[i].current:
                j += 1
            begin = polls[i - 1].sent if i > 0 else float("-inf")
            end = polls[j + 1].answered if j + 1 < len(polls) else float("inf")
            out.append((polls[i].current, begin, end, i, j))
            i = j + 1
        return out


def rss_mb(pid: int) -> float:
    return memory_kib(pid)["VmRSS"] / 1024


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class Sample:
    t: float
    rss_mb: dict[str, float]
    fds: dict[str, int]


def sample(pids: dict[str, int]) -> Sample:
    return Sample(
        time.monotonic(),
        {n: rss_mb(p) for n, p in pids.items()},
        {n: fds(p) for n, p in pids.items()},
    )


class Sampler(threading.Thread):
    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.halt = pids, threading.Event()
        self.samples: list[Sample] = []

    def run(self) -> None:
        while not self.halt.wait(SAMPLE_PERIOD_S):
            self.samples.append(sample(self.pids))


@dataclass
class Command:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    makes_current: str | None = None
    started: float = 0.0
    finished: float = 0.0
    returncode: int | None = None
    output: str = ""


def run_command(work: Path, command: Command) -> None:
    command.started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "agi_credit", *command.args],
        cwd=work,
        env=clean_env(command.env),
        capture_output=True,
        text=True,
        check=False,
    )
    command.finished = time.monotonic()
    command.returncode = done.returncode
    command.output = (done.stdout + done.stderr)[-2000:]


class Clients:
    """A child process of clients; its JSON lines are read as they come."""

    def __init__(self, kind: str, config: dict[str, Any], work: Path) -> None:
        self.kind = kind
        self.log = work / f"clients-{kind}.log"
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--clients", kind],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=work,
                env=clean_env(),
                text=True,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(config))
        self.proc.stdin.close()
        self.records: list[list[Any]] = []
        self.bad_lines = 0
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                self.records.append(json.loads(line))
            except json.JSONDecodeError:
                self.bad_lines += 1

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.reader.join(timeout=10)
        return code


# --- the checks and the report --------------------------------------------------------------


def answered_outside(
    records: list[list[Any]], intervals: Mapping[str | None, list[tuple[float, float]]]
) -> list[str]:
    """Requests answered by a version whose `intervals` (when it may have been current) do
    not meet the request's [t0, t1]; errors are counted elsewhere."""
    bad = []
    for protocol, rows, t0, t1, version, error in records:
        if error:
            continue
        if not any(t0 <= end and t1 >= begin for begin, end in intervals.get(version, [])):
            bad.append(f"{protocol} {rows} rows [{t0:.3f}, {t1:.3f}] answered by {version}")
    return bad


def check_observed(
    records: list[list[Any]], runs: list[tuple[str | None, float, float, int, int]]
) -> list[str]:
    """Requests answered by a version the predictor did not have current during them."""
    intervals: dict[str | None, list[tuple[float, float]]] = defaultdict(list)
    for version, begin, end, _, _ in runs:
        intervals[version].append((begin, end))
    return answered_outside(records, intervals)


def check_commands(
    records: list[list[Any]], promote: Command, rollback: Command, first: str, loaded: float
) -> list[str]:
    """Requests answered by a version outside [command that made it current started,
    successor in place + RELOAD_LAG_S]; the promoted version is in place when its command
    has finished and it was seen `loaded`."""
    second = promote.makes_current
    intervals = {
        first: [
            (float("-inf"), max(promote.finished, loaded) + RELOAD_LAG_S),
            (rollback.started, float("inf")),
        ],
        second: [(promote.started, rollback.finished + RELOAD_LAG_S)],
    }
    return answered_outside(records, intervals)


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    a = np.asarray(values) * 1000
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
    }


def minute_of(t: float, t_start: float) -> int:
    """-1 for the warm-up, then 0, 1, … from the start of the measured run."""
    return -1 if t < t_start else int((t - t_start) // 60)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600, help="measured load (600)")
    parser.add_argument("--warmup", type=float, default=20, help="load before measuring (20)")
    parser.add_argument("--rate", type=float, default=120, help="requests/s, all clients (120)")
    parser.add_argument("--rest-clients", type=int, default=4)
    parser.add_argument("--grpc-clients", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the report here as JSON")
    parser.add_argument("--clients", choices=["rest", "grpc"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.clients:
        return run_clients(args.clients)
    started_at = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp, stack(Path(tmp)) as s:
        return soak(args, s, started_at)


def soak(args: argparse.Namespace, s: Stack, started_at: dt.datetime) -> int:
    pids = {"predictor": s.predictor.pid, "sidecar": s.sidecar.pid}
    monitor = Monitor(s.predictor_url)
    monitor.start()
    while not monitor.polls:
        time.sleep(0.01)
    first_version = monitor.polls[0].current or "v1"
    sampler = Sampler(pids)
    sampler.start()

    total_clients = args.rest_clients + args.grpc_clients
    launch, launched_at = time.monotonic(), dt.datetime.now(dt.UTC)
    t_start = launch + args.warmup
    until = t_start + args.seconds
    per_client = args.rate / total_clients
    common = {"login": f"{s.sidecar_url}/login", "password": s.password, "until": until}
    children = [
        Clients(
            "rest",
            {**common, "url": s.sidecar_url, "clients": args.rest_clients, "rate": per_client},
            s.work,
        ),
        Clients(
            "grpc",
            {**common, "target": s.sidecar_grpc, "clients": args.grpc_clients, "rate": per_client},
            s.work,
        ),
    ]

    train = Command(
        "train v2 (MIN_AUC=1.0: kept a candidate)",
        ["train", "--data", str(s.data), "--store", str(s.store)],
        env={"MIN_AUC": "1.0"},
    )
    promote = Command(
        "promote v2",
        ["promote", "v2", "--store", str(s.store), "--reason", "soak"],
        makes_current="v2",
    )
    rollback = Command(
        "rollback",
        ["rollback", "--store", str(s.store), "--reason", "soak"],
        makes_current=first_version,
    )
    commands = [(0.25, train), (0.5, promote), (0.75, rollback)]

    try:
        time.sleep(max(0.0, t_start - time.monotonic()))
        start_sample = sample(pids)
        for fraction, command in commands:
            time.sleep(max(0.0, t_start + fraction * args.seconds - time.monotonic()))
            run_command(s.work, command)
        time.sleep(max(0.0, until - 1.0 - time.monotonic()))
        end_sample = sample(pids)
        codes = {c.kind: c.wait(timeout=until - time.monotonic() + 60) for c in children}
    finally:
        for child in children:
            stop(child.proc)
    time.sleep(0.2)
    monitor.halt.set()
    sampler.halt.set()
    monitor.join()
    sampler.join()

    return report(
        args,
        started_at=started_at,
        measured_from=launched_at + dt.timedelta(seconds=args.warmup),
        t_start=t_start,
        children=children,
        codes=codes,
        monitor=monitor,
        samples=sampler.samples,
        start_sample=start_sample,
        end_sample=end_sample,
        commands=[train, promote, rollback],
        first_version=first_version,
        work=s.work,
    )


def report(
    args: argparse.Namespace,
    *,
    started_at: dt.datetime,
    measured_from: dt.datetime,
    t_start: float,
    children: list[Clients],
    codes: dict[str, int],
    monitor: Monitor,
    samples: list[Sample],
    start_sample: Sample,
    end_sample: Sample,
    commands: list[Command],
    first_version: str,
    work: Path,
) -> int:
    def rel(t: float) -> float:
        return round(t - t_start, 3)

    records = [r for c in children for r in c.records]
    failures: list[str] = []

    # Requests and errors.
    errors = [r for r in records if r[5]]
    by_protocol = Counter(r[0] for r in records)
    by_kind = Counter(f"{r[0]}, {r[1]} rows" for r in records)
    for c in children:
        if codes[c.kind] != 0:
            failures.append(f"the {c.kind} clients exited {codes[c.kind]}")
            print(c.log.read_text()[-3000:], file=sys.stderr)
        if c.bad_lines:
            failures.append(f"the {c.kind} clients wrote {c.bad_lines} unreadable lines")
    for protocol in PROTOCOLS:
        if not by_protocol[protocol]:
            failures.append(f"no {protocol} requests")
    if errors:
        failures.append(f"{len(errors)} errors")
    if monitor.errors:
        failures.append(f"{len(monitor.errors)} failed polls of the predictor's metadata")

    # Latency and versions per minute.
    latencies: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    versions: dict[int, Counter[str]] = defaultdict(Counter)
    for protocol, _rows, t0, t1, version, error in records:
        minute = minute_of(t0, t_start)
        if not error:
            latencies[minute][protocol].append(t1 - t0)
            versions[minute][version] += 1
    minutes = []
    for minute in sorted(latencies):
        in_minute = [x for x in samples if minute_of(x.t, t_start) == minute]
        minutes.append(
            {
                "minute": "warm-up" if minute < 0 else minute,
                "latency": {p: percentiles(latencies[minute][p]) for p in PROTOCOLS},
                "versions": dict(sorted(versions[minute].items())),
                "rss_mb": {n: round(v, 1) for n, v in in_minute[-1].rss_mb.items()}
                if in_minute
                else {},
                "fds": in_minute[-1].fds if in_minute else {},
            }
        )

    # Memory and file descriptors.
    processes = {}
    for name in start_sample.rss_mb:
        rss0, rss1 = start_sample.rss_mb[name], end_sample.rss_mb[name]
        fd0, fd1 = start_sample.fds[name], end_sample.fds[name]
        rss_limit = rss0 * RSS_GROWTH[0] + RSS_GROWTH[1]
        ok = rss1 <= rss_limit and fd1 <= fd0 + FD_GROWTH
        if not ok:
            failures.append(f"{name} grew beyond the bound")
        peak = max([x.rss_mb[name] for x in samples] or [rss1])
        processes[name] = {
            "rss_mb_start": round(rss0, 1),
            "rss_mb_end": round(rss1, 1),
            "rss_mb_peak_sampled": round(peak, 1),
            "rss_mb_limit": round(rss_limit, 1),
            "fds_start": fd0,
            "fds_end": fd1,
            "fds_limit": fd0 + FD_GROWTH,
            "within_bounds": ok,
        }

    # Governance and versions.
    train, promote, rollback = commands
    for command in commands:
        if command.returncode != 0:
            failures.append(f"{command.name} exited {command.returncode}: {command.output}")
    runs = monitor.runs()
    sequence = [v for v, *_ in runs]
    expected = [first_version, promote.makes_current, first_version]
    if sequence != expected:
        failures.append(f"observed current versions {sequence}, expected {expected}")
    seen = next((p for p in monitor.polls if promote.makes_current in p.served), None)
    loaded = seen.answered if seen else float("inf")
    switches = []
    for (old, _, _, _, last), (new, _, _, first, _) in itertools.pairwise(runs):
        low, high = monitor.polls[last].sent, monitor.polls[first].answered
        cause = promote if new == promote.makes_current else rollback
        in_place = max(cause.finished, loaded) if cause is promote else cause.finished
        lag = high - cause.finished
        if not (high >= cause.started and low <= in_place + RELOAD_LAG_S):
            failures.append(f"the switch {old} -> {new} is outside {cause.name}'s window")
        switches.append(
            {
                "from": old,
                "to": new,
                "between_s": [rel(low), rel(high)],
                "command": cause.name,
                "seen_s_from_command_end": round(lag, 3),
            }
        )
    observed_bad = check_observed(records, runs)
    commands_bad = check_commands(records, promote, rollback, first_version, loaded)
    if observed_bad:
        failures.append(f"{len(observed_bad)} answers by a version not observed current")
    if commands_bad:
        failures.append(f"{len(commands_bad)} answers by a version outside its commands' window")
    gaps = [b.answered - a.sent for a, b in itertools.pairwise(monitor.polls)]

    result = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "measured_from": measured_from.isoformat(timespec="seconds"),
        "seconds": args.seconds,
        "warmup_s": args.warmup,
        "cores": os.cpu_count(),
        "rate_target": args.rate,
        "clients": {"rest": args.rest_clients, "grpc": args.grpc_clients},
        "batches": {str(k): v for k, v in BATCHES.items()},
        "requests": {
            "total": len(records),
            "measured_rate": round(
                sum(1 for r in records if r[2] >= t_start) / max(args.seconds, 1e-9), 1
            ),
            "by_protocol": dict(by_protocol),
            "by_kind": dict(sorted(by_kind.items())),
        },
        "errors": {
            "total": len(errors),
            "kinds": dict(Counter(r[5][:80] for r in errors).most_common(10)),
            "monitor": monitor.errors[:10],
        },
        "latency_overall": {
            p: percentiles([r[3] - r[2] for r in records if r[0] == p and not r[5]])
            for p in PROTOCOLS
        },
        "minutes": minutes,
        "processes": processes,
        "bounds": {
            "rss": f"end <= start * {RSS_GROWTH[0]} + {RSS_GROWTH[1]:g} MB",
            "fds": f"end <= start + {FD_GROWTH}",
            "reload_lag_s": RELOAD_LAG_S,
        },
        "governance": [
            {
                "name": c.name,
                "started_s": rel(c.started),
                "finished_s": rel(c.finished),
                "returncode": c.returncode,
            }
            for c in commands
        ],
        "v2_loaded_seen_s": rel(loaded) if seen else None,
        "v2_loaded_seen_s_after_train": round(loaded - train.finished, 3) if seen else None,
        "switches": switches,
        "monitor": {
            "polls": len(monitor.polls),
            "largest_window_s": round(max(gaps, default=0.0), 3),
        },
        "version_check": {
            "observed_violations": len(observed_bad),
            "commands_violations": len(commands_bad),
            "examples": (observed_bad + commands_bad)[:10],
        },
        "failures": failures,
        "passed": not failures,
    }
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if failures:
        print(f"(logs of the run were in {work}, removed)", file=sys.stderr)
    return 0 if not failures else 1


def _latency_cell(q: dict[str, float]) -> str:
    return f"{q['p50_ms']:.1f} / {q['p99_ms']:.1f} (n={q['n']:,})" if q["n"] else "-"


def print_report(r: dict[str, Any]) -> None:
    req = r["requests"]
    print(
        f"\nbench-soak: {r['seconds']:g} s measured after {r['warmup_s']:g} s of warm-up, "
        f"{r['clients']['rest']} REST + {r['clients']['grpc']} gRPC clients paced at "
        f"{r['rate_target']:g} req/s in all (measured {req['measured_rate']}), batches of "
        f"1/10/100 rows 60/30/10 %; {r['cores']} cores; started {r['started_at']}"
    )
    print(
        f"requests: {req['total']:,} ("
        + ", ".join(f"{k} {v:,}" for k, v in req["by_protocol"].items())
        + ")"
    )
    print(f"errors: {r['errors']['total']} {r['errors']['kinds'] or ''}")
    print(
        f"\n{'minute':>8}"
        + "".join(f"{p + ' p50/p99 ms':>30}" for p in PROTOCOLS)
        + "   RSS MB pred/sidecar   answers by version"
    )
    for m in r["minutes"]:
        cells = "".join(f"{_latency_cell(m['latency'][p]):>30}" for p in PROTOCOLS)
        rss = "/".join(f"{m['rss_mb'][n]:.0f}" for n in m["rss_mb"]) or "-"
        print(f"{m['minute']!s:>8}{cells}   {rss:>19}   {m['versions']}")
    print("\ngovernance (s from the start of the measured run):")
    for c in r["governance"]:
        print(
            f"  {c['name']:45} {c['started_s']:8.2f} → {c['finished_s']:8.2f}  "
            f"exit {c['returncode']}"
        )
    if r["v2_loaded_seen_s"] is not None:
        print(
            f"  v2 first seen served at {r['v2_loaded_seen_s']:.2f}, "
            f"{r['v2_loaded_seen_s_after_train']:.2f} s after train finished"
        )
    for sw in r["switches"]:
        low, high = sw["between_s"]
        print(
            f"  switch {sw['from']} → {sw['to']} between {low:.2f} and {high:.2f} "
            f"(first seen {sw['seen_s_from_command_end']:+.3f} s from the end of "
            f"{sw['command']})"
        )
    vc = r["version_check"]
    print(
        f"version check: {vc['observed_violations']} answers outside the observed timeline, "
        f"{vc['commands_violations']} outside the commands' windows "
        f"(+{r['bounds']['reload_lag_s']:g} s); monitor: {r['monitor']['polls']:,} polls, "
        f"largest window {r['monitor']['largest_window_s']} s"
    )
    print(
        "\nmemory and fds, end of warm-up → end of load (bounds: "
        f"RSS {r['bounds']['rss']}, fds {r['bounds']['fds']}):"
    )
    for name, p in r["processes"].items():
        print(
            f"  {name:10} RSS {p['rss_mb_start']:7.1f} → {p['rss_mb_end']:7.1f} MB (limit "
            f"{p['rss_mb_limit']:.1f}, sampled peak {p['rss_mb_peak_sampled']:.1f})   fds "
            f"{p['fds_start']} → {p['fds_end']} (limit {p['fds_limit']})   "
            f"{'PASS' if p['within_bounds'] else 'FAIL'}"
        )
    print("\n" + ("PASS" if r["passed"] else "FAIL: " + "; ".join(r["failures"])))


if __name__ == "__main__":
    raise SystemExit(main())
