"""Fixtures of the sidecar tests: a real predictor and a real sidecar, on loopback; and an
echo upstream that records what the sidecar forwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agi_credit.store import ModelStore
from tests.auth.echo import Echo, running_echo
from tests.servers import (
    ADMIN,
    ADMIN_PASSWORD,
    PASSWORD,
    USER,
    Server,
    Sidecar,
    make_users_file,
    prod_env,
    running_server,
    running_sidecar,
)


@pytest.fixture(scope="module")
def predictor(
    serving_store: ModelStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("predictor") / "predictor.log"
    with running_server(["--store", str(serving_store.root)], log) as server:
        yield server


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_users_file(
        tmp_path_factory.mktemp("users") / "users.yaml",
        {USER: PASSWORD, "bob": "bobs password 1", ADMIN: ADMIN_PASSWORD},
        roles={ADMIN: "admin"},
    )


@pytest.fixture(scope="module")
def sidecar(
    predictor: Server, users_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    """A prod-configured sidecar; login limits high enough for the tests that share it."""
    log = tmp_path_factory.mktemp("sidecar") / "sidecar.log"
    env = prod_env(users_file, LOGIN_ATTEMPTS_PER_CLIENT="1000", LOGIN_FAILURES_PER_USER="1000")
    with running_sidecar(predictor, log, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def echo() -> Iterator[Echo]:
    with running_echo() as running:
        yield running


@pytest.fixture(scope="module")
def default_sidecar(
    predictor: Server, users_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    """A prod sidecar with the default limits (MAX_REQUEST_BYTES, 2 slots), its own: the
    memory tests measure its RSS alone."""
    log = tmp_path_factory.mktemp("default") / "sidecar.log"
    with running_sidecar(predictor, log, env=prod_env(users_file)) as running:
        yield running


@pytest.fixture(scope="module")
def one_slot_sidecar(
    predictor: Server, users_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sidecar]:
    """A prod sidecar serving one /predict or gRPC call at a time (MAX_CONCURRENT_PREDICTS=1)."""
    log = tmp_path_factory.mktemp("one-slot") / "sidecar.log"
    env = prod_env(users_file, MAX_CONCURRENT_PREDICTS="1")
    with running_sidecar(predictor, log, env=env) as running:
        yield running
