"""Download the training data (helm chart, training.data.source=url): an init container of
the training pod, run from the training image with Python's standard library only.

DATA_URL is fetched to DATA_PATH through a temporary file, renamed once complete; with
DATA_SHA256 set, a download with another digest fails the pod and leaves no file.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request

url = os.environ["DATA_URL"]
path = os.environ["DATA_PATH"]
expected = os.environ.get("DATA_SHA256", "").strip().lower()
partial = path + ".part"

digest = hashlib.sha256()
size = 0
with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
    while chunk := response.read(1 << 20):
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
if expected and digest.hexdigest() != expected:
    os.remove(partial)
    sys.exit(f"fetch-data: sha256 {digest.hexdigest()} differs from DATA_SHA256 {expected}")
os.replace(partial, path)
print(f"fetch-data: {size:,} bytes to {path}, sha256 {digest.hexdigest()}", flush=True)
