#!/usr/bin/env bash
# `make run`: data and a first model when there are none, then the predictor (:8080) and
# the auth sidecar (:8000) as two processes. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

"$bin/agi-credit" train --synthetic --if-empty
"$bin/agi-credit" models

"$bin/agi-credit" serve --http-port 8080 --grpc-port 8081 &
predictor=$!
"$bin/agi-credit" auth --port 8000 --upstream http://127.0.0.1:8080 &
sidecar=$!
trap 'kill $predictor $sidecar 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM

"$bin/python" - <<'PY'
import sys, time, httpx
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        if httpx.get("http://127.0.0.1:8000/ready", timeout=1).status_code == 200:
            sys.exit(0)
    except httpx.TransportError:
        pass
    time.sleep(0.2)
sys.exit("the stack did not become ready in 60 s")
PY

cat <<'TOUR'

agi-credit is up: the auth sidecar on http://127.0.0.1:8000 (docs: /docs), the predictor
behind it on :8080. Ctrl-C stops both. Try (ENV=dev without USERS_FILE: admin / 123456):

  TOKEN=$(curl -s -X POST http://127.0.0.1:8000/login -H 'Content-Type: application/json' \
    -d '{"username": "admin", "password": "123456"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -s -X POST http://127.0.0.1:8000/predict -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' \
    -d '{"AMT_INCOME_TOTAL": 5000, "AMT_CREDIT": 200000, "DAYS_BIRTH": -12000, "AMT_GOODS_PRICE": 180000}'

TOUR
wait -n "$predictor" "$sidecar"
