"""The predictor killed under load: the sidecar answers 503 with a clear error within a
second, never hangs, and serves again by itself once a predictor is back on its port."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from agi_credit.store import ModelStore
from tests.auth.echo import bearer
from tests.bodies import APPLICANT
from tests.servers import Server, agi_credit_process, free_port, prod_env, running_sidecar

ANSWER_WITHIN = 1.0  # seconds, the bound on every answer while the predictor is down


@contextmanager
def predictor_on(store: ModelStore, http_port: int, grpc_port: int, log: Path) -> Iterator[Server]:
    command = ["serve", "--store", str(store.root)]
    command += ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    url = f"http://127.0.0.1:{http_port}/v2/health/ready"
    with agi_credit_process(command, log, url, env={"RELOAD_INTERVAL": "0.1"}) as process:
        yield Server(process, http_port, grpc_port, log)


@dataclass
class Load:
    """Clients sending /predict one after another, recording every answer."""

    url: str
    headers: dict[str, str]
    answers: list[tuple[float, int, float, str]] = field(default_factory=list)
    """(sent at, status, seconds taken, error) of every request."""
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(
                        f"{self.url}/predict", json=APPLICANT, headers=self.headers
                    )
                    status = response.status_code
                    error = "" if status == 200 else str(response.json().get("error"))
                except httpx.HTTPError as exc:
                    status, error = 0, f"client error: {exc!r}"
                self.answers.append((sent, status, time.monotonic() - sent, error))
                time.sleep(0.01)


def test_a_killed_predictor_gives_quick_503s_and_is_followed_when_back(
    serving_store: ModelStore, users_file: Path, tmp_path: Path
) -> None:
    http_port, grpc_port = free_port(), free_port()
    with predictor_on(serving_store, http_port, grpc_port, tmp_path / "p1.log") as first:
        env = prod_env(users_file)
        with running_sidecar(first, tmp_path / "sidecar.log", env=env) as sidecar:
            load = Load(sidecar.url, bearer(sidecar.url))
            threads = [threading.Thread(target=load.run, daemon=True) for _ in range(4)]
            for thread in threads:
                thread.start()
            try:
                time.sleep(1.0)
                first.process.send_signal(signal.SIGKILL)
                first.process.wait()
                killed = time.monotonic()
                time.sleep(3.0)
                assert httpx.get(f"{sidecar.url}/ready").status_code == 503
                with predictor_on(serving_store, http_port, grpc_port, tmp_path / "p2.log"):
                    back = time.monotonic()
                    time.sleep(2.0)
                    load.stop.set()
                    for thread in threads:
                        thread.join(timeout=30)
            finally:
                load.stop.set()

    before = [a for a in load.answers if a[0] < killed - 0.1]
    down = [a for a in load.answers if killed + 0.1 < a[0] < back]
    after = [a for a in load.answers if a[0] > back + 0.5]
    assert before and all(status == 200 for _, status, _, _ in before)
    assert down, "no request was sent while the predictor was down"
    for _, status, seconds, error in down:
        assert status in (200, 503), (status, error)  # 200: answered before it died
        assert seconds < ANSWER_WITHIN, f"{seconds:.2f} s: {error}"
    assert {e for _, s, _, e in down if s == 503} == {"the predictor is unavailable"}
    assert after and all(status == 200 for _, status, _, _ in after), after[:5]
    print(
        f"{len(before)} answers before the kill, {len(down)} while down "
        f"(slowest {max(s for _, _, s, _ in down):.3f} s), {len(after)} after it came back"
    )
