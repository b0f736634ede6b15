"""`helm test`: the release through its Service, as a client sees it (helm chart).

Run from the auth image with Python's standard library only: /health, /ready (waiting for
a first model), a 401 without a token, then, with credentials, login, /model-info and
/predict. Without credentials (env=prod and no tests.credentials) only the public door is
checked, and the log says so.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = os.environ["BASE_URL"].rstrip("/")
USERNAME = os.environ.get("TEST_USERNAME", "")
PASSWORD = os.environ.get("TEST_PASSWORD", "")
READY_TIMEOUT = float(os.environ.get("READY_TIMEOUT_SECONDS", "600"))
APPLICANT = {
    "AMT_INCOME_TOTAL": 5000,
    "AMT_CREDIT": 200000,
    "DAYS_BIRTH": -12000,
    "AMT_GOODS_PRICE": 180000,
}


def call(method: str, path: str, body: object = None, token: str = "") -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")


def check(name: str, ok: bool, detail: object = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)
    if not ok:
        sys.exit(1)


def main() -> None:
    status, body = call("GET", "/health")
    check("GET /health", status == 200, body)

    deadline = time.monotonic() + READY_TIMEOUT
    while (status := call("GET", "/ready")[0]) != 200 and time.monotonic() < deadline:
        time.sleep(3)
    check("GET /ready (a model is served)", status == 200, status)

    status, body = call("POST", "/predict", APPLICANT)
    check("POST /predict without a token is 401", status == 401, body)

    if not (USERNAME and PASSWORD):
        print("SKIPPED login and predict: set tests.credentials (a user of auth.users)")
        return
    status, body = call("POST", "/login", {"username": USERNAME, "password": PASSWORD})
    check("POST /login", status == 200 and isinstance(body, dict) and "token" in body, status)
    assert isinstance(body, dict)
    token = str(body["token"])

    status, body = call("GET", "/model-info", token=token)
    check("GET /model-info", status == 200, body)

    status, body = call("POST", "/predict", APPLICANT, token=token)
    ok = status == 200 and isinstance(body, dict) and 0.0 <= body.get("prob_default", -1) <= 1.0
    check("POST /predict", ok, body)


if __name__ == "__main__":
    main()
