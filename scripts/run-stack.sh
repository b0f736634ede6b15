#!/usr/bin/env bash
# `make run`: data and a first model when there are none, then the predictor (:8080) and
# the auth sidecar (:8000) as two processes. Ctrl-C stops both.
# Ports (HTTP_PORT, GRPC_PORT, AUTH_PORT, AUTH_GRPC_PORT) and the size of generated data
# (SYNTHETIC_ROWS) can be changed from the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
export HTTP_PORT=${HTTP_PORT:-8080} GRPC_PORT=${GRPC_PORT:-8081} AUTH_PORT=${AUTH_PORT:-8000}
export AUTH_GRPC_PORT=${AUTH_GRPC_PORT:-8001}
export PREDICTOR_URL="http://127.0.0.1:$HTTP_PORT" PREDICTOR_GRPC="127.0.0.1:$GRPC_PORT"

"$bin/agi-credit" train --synthetic --if-empty --rows "${SYNTHETIC_ROWS:-307511}"
"$bin/agi-credit" models

"$bin/agi-credit" serve &
predictor=$!
"$bin/agi-credit" auth &
sidecar=$!
trap 'kill $predictor $sidecar 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM

"$bin/python" - <<'PY'
import os, sys, time, httpx
ready = f"http://127.0.0.1:{os.environ['AUTH_PORT']}/ready"
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        if httpx.get(ready, timeout=1).status_code == 200:
            sys.exit(0)
    except httpx.TransportError:
        pass
    time.sleep(0.2)
sys.exit("the stack did not become ready in 60 s")
PY

sidecar_url="http://127.0.0.1:$AUTH_PORT"
cat <<TOUR

agi-credit is up: the auth sidecar on $sidecar_url (docs: /docs; v2 gRPC on
:$AUTH_GRPC_PORT, same token), the predictor behind it on :$HTTP_PORT. Ctrl-C stops both. Try (ENV=dev without USERS_FILE: admin / 123456):

  TOKEN=\$(curl -s -X POST $sidecar_url/login -H 'Content-Type: application/json' \\
    -d '{"username": "admin", "password": "123456"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -s -X POST $sidecar_url/predict -H "Authorization: Bearer \$TOKEN" \\
    -H 'Content-Type: application/json' \\
    -d '{"AMT_INCOME_TOTAL": 5000, "AMT_CREDIT": 200000, "DAYS_BIRTH": -12000, "AMT_GOODS_PRICE": 180000}'

TOUR
wait -n "$predictor" "$sidecar"
