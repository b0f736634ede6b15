"""The `agi-credit` command line. Heavy modules (R, pandas) load inside the commands."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from agi_credit._errors import AgiCreditError
from agi_credit.data import OFFICIAL_ROWS
from agi_credit.settings import (
    COMPONENTS,
    AuthSettings,
    CommonSettings,
    PredictorSettings,
    TrainingSettings,
    settings_with,
)

if TYPE_CHECKING:
    from agi_credit.store import ModelStore

S = TypeVar("S", bound=CommonSettings)

app = typer.Typer(
    name="agi-credit",
    help="Train, govern and serve R credit-risk models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

StoreOption = Annotated[
    Path | None, typer.Option("--store", help="Model store root (default: MODEL_STORE).")
]
ActorOption = Annotated[
    str | None,
    typer.Option(help="Who acts, for the history (default: AGI_CREDIT_ACTOR or user@host)."),
]


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def _errors_as_messages() -> Iterator[None]:
    try:
        yield
    except AgiCreditError as exc:
        _fail(str(exc))


def _settings(cls: type[S], **options: Any) -> S:
    """`cls` from the environment and `.env`, with the options the user passed on top."""
    try:
        return settings_with(cls, **options)
    except ValueError as exc:
        _fail(f"invalid configuration: {exc}")


def _write_synthetic(path: Path, *, rows: int, seed: int) -> float:
    """Generate and write a synthetic CSV with a progress display on a terminal (silence in
    CI logs and pipes); returns its default rate."""
    from rich.progress import Progress

    from agi_credit.data import generate_frame, write_csv

    with Progress(console=err, disable=not err.is_terminal, transient=True) as progress:
        drawing = progress.add_task(f"drawing {rows:,} rows", total=None)
        frame = generate_frame(rows, seed=seed)
        progress.update(drawing, total=1, completed=1)
        writing = progress.add_task(f"writing {path.name}", total=rows)
        try:
            write_csv(frame, path, on_progress=lambda n: progress.advance(writing, n))
        except OSError as exc:
            _fail(f"cannot write {path}: {exc.strerror or exc}")
    return float(frame["TARGET"].mean())


def _open_store(store: Path | None) -> ModelStore:
    from agi_credit.store import ModelStore

    return ModelStore(store or _settings(CommonSettings).model_store)


def _actor(actor: str | None) -> str | None:
    return actor or _settings(CommonSettings).actor


def _exit_on_signal(signum: int, _frame: object) -> NoReturn:
    """Unwind (undo the store transaction, remove staging), then exit 128 + signal."""
    raise SystemExit(128 + signum)


def _log_line(line: str) -> None:
    err.print(line, highlight=False, markup=False, soft_wrap=True)


@app.command("gen-data")
def gen_data(
    rows: Annotated[int, typer.Option(min=1, help="Number of data rows.")] = OFFICIAL_ROWS,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="CSV to write (default: DATA_PATH).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same file.")] = 42,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a synthetic application_train.csv with the real file's schema and statistics."""
    path = out_path or _settings(TrainingSettings).data_path
    if path.exists() and not force:
        _fail(f"{path} exists; pass --force to overwrite it (it may be the real data)")
    default_rate = _write_synthetic(path, rows=rows, seed=seed)
    err.print(f"wrote {rows:,} synthetic rows to {path} (seed {seed}, {default_rate:.2%} defaults)")


@app.command("check-data")
def check_data(
    path: Annotated[Path | None, typer.Argument(help="CSV to check (default: DATA_PATH).")] = None,
) -> None:
    """Validate a CSV against the real application_train.csv schema."""
    from agi_credit.data import check_csv

    path = path or _settings(TrainingSettings).data_path
    with _errors_as_messages():
        report = check_csv(path)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for error in report.errors:
        err.print(f"[bold red]error:[/] {error}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)
    origin = (
        "byte-identical to the official Home Credit application_train.csv"
        if report.official
        else "not the official file (a sample or a stand-in)"
    )
    rate = f", {report.default_rate:.2%} defaults" if report.default_rate is not None else ""
    out.print(f"ok: {path}: {report.rows:,} rows{rate}; {origin}", highlight=False)


@app.command()
def train(
    data: Annotated[Path | None, typer.Option(help="Training CSV (default: DATA_PATH).")] = None,
    store: StoreOption = None,
    synthetic: Annotated[
        bool, typer.Option(help="Generate a synthetic CSV at the data path when there is none.")
    ] = False,
    rows: Annotated[int, typer.Option(min=10, help="Rows of synthetic data.")] = OFFICIAL_ROWS,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 42,
    script: Annotated[
        Path | None,
        typer.Option(help="The data scientist's script (default: TRAIN_SCRIPT)."),
    ] = None,
    actor: ActorOption = None,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Only train when the store has no version yet.")
    ] = False,
) -> None:
    """Train a new version with train.R, evaluate it, register it, promote it if it passes."""
    from agi_credit.training import run_training

    # As a container's first process Python has no SIGTERM handler: without this, a stopped
    # job is killed later, its staging directory left in the store.
    signal.signal(signal.SIGTERM, _exit_on_signal)

    settings = _settings(
        TrainingSettings, data_path=data, model_store=store, train_script=script, actor=actor
    )
    if if_empty:
        with _errors_as_messages():
            existing = _open_store(settings.model_store).read()
        if existing.models:
            err.print(
                f"the store has {len(existing.models)} version(s): not training "
                "(drop --if-empty to train another)"
            )
            return
    with _errors_as_messages():
        if synthetic and not settings.data_path.is_file():
            err.print(f"no data at {settings.data_path}: generating {rows:,} synthetic rows")
            _write_synthetic(settings.data_path, rows=rows, seed=seed)
        result = run_training(settings, log=_log_line)
    entry = result.entry
    verdict = "promoted to current version" if result.promoted else "kept as a candidate"
    out.print(f"registered {entry.version}: {verdict} — {result.reason}", highlight=False)
    out.print(f"report: {result.report_dir}", highlight=False)
    steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in result.timings.items())
    err.print(f"timings: {steps}", highlight=False)


@app.command()
def models(
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print metadata.json.")] = False,
) -> None:
    """List the versions in the model store."""

    with _errors_as_messages():
        metadata = _open_store(store).read()
    if as_json:
        sys.stdout.write(metadata.to_json())
        return
    if not metadata.models:
        err.print("the model store is empty; run `agi-credit train`")
        return
    table = Table(title=f"current version: {metadata.current_version}")
    for column in ("version", "status", "created (UTC)", "AUC", "Gini", "rows", "reason"):
        table.add_column(column)
    for entry in sorted(metadata.models, key=lambda m: m.number):
        metrics = entry.metrics or {}
        table.add_row(
            entry.version,
            metadata.status_of(entry).value,
            entry.created_at,
            f"{metrics['auc']:.4f}" if "auc" in metrics else "-",
            f"{metrics['gini']:.4f}" if "gini" in metrics else "-",
            f"{(entry.training_data or {}).get('rows', 0):,}" if entry.training_data else "-",
            entry.status_reason or "",
        )
    out.print(table)


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="The version to serve, e.g. v3.")],
    store: StoreOption = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
    actor: ActorOption = None,
) -> None:
    """Make VERSION the current version."""

    with _errors_as_messages():
        entry = _open_store(store).promote(version, actor=_actor(actor), reason=reason)
    out.print(f"current version is now {entry.version}")


@app.command()
def rollback(
    store: StoreOption = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
    actor: ActorOption = None,
) -> None:
    """Go back to the version that was active before the current one."""

    with _errors_as_messages():
        entry = _open_store(store).rollback(actor=_actor(actor), reason=reason)
    out.print(f"rolled back: current version is now {entry.version}")


@app.command()
def reject(
    version: Annotated[str, typer.Argument(help="The version to reject, e.g. v3.")],
    reason: Annotated[str, typer.Option(help="Why it is unfit (required).")],
    store: StoreOption = None,
    actor: ActorOption = None,
) -> None:
    """Mark VERSION unfit for production: it can no longer be promoted."""

    with _errors_as_messages():
        entry = _open_store(store).reject(version, reason=reason, actor=_actor(actor))
    out.print(f"{entry.version} rejected: {reason}")


@app.command()
def serve(
    store: StoreOption = None,
    model_path: Annotated[
        Path | None, typer.Option(help="Serve one .rds without a store (default: MODEL_PATH).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (PREDICTOR_HOST).")] = None,
    http_port: Annotated[int | None, typer.Option(min=1, max=65535, help="(HTTP_PORT)")] = None,
    grpc_port: Annotated[int | None, typer.Option(min=1, max=65535, help="(GRPC_PORT)")] = None,
    model_name: Annotated[str | None, typer.Option(help="(default: MODEL_NAME)")] = None,
) -> None:
    """Serve the store's models with KServe: v1, v2 REST and gRPC, every version."""
    from agi_credit.predictor import serve as run_predictor

    settings = _settings(
        PredictorSettings,
        model_store=store,
        model_path=model_path,
        predictor_host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        model_name=model_name,
    )
    if store is not None and settings.model_path is not None:
        _fail("pass either --store or --model-path, not both")
    run_predictor(settings)


@app.command()
def auth(
    upstream: Annotated[
        str | None, typer.Option(help="The predictor (default: PREDICTOR_URL).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (AUTH_HOST); 0.0.0.0 in a pod.")
    ] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="(AUTH_PORT)")] = None,
    grpc_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="v2 gRPC behind the JWT; 0: none (AUTH_GRPC_PORT)."),
    ] = None,
    grpc_upstream: Annotated[
        str | None, typer.Option(help="The predictor's gRPC host:port (PREDICTOR_GRPC).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Prometheus metrics on 127.0.0.1; 0: none (AUTH_METRICS_PORT)."
        ),
    ] = None,
) -> None:
    """Serve the JWT auth sidecar: the origin's REST API, and v2 gRPC, in front of the
    predictor."""
    from agi_credit.auth import InsecureConfiguration, run

    settings = _settings(
        AuthSettings,
        predictor_url=upstream,
        auth_host=host,
        auth_port=port,
        auth_grpc_port=grpc_port,
        predictor_grpc=grpc_upstream,
        auth_metrics_port=metrics_port,
    )
    try:
        run(settings)
    except InsecureConfiguration as exc:
        _fail(str(exc))


@app.command("config")
def show_config(
    component: Annotated[
        str | None,
        typer.Option(help=f"One of {', '.join(COMPONENTS)} (default: all of them)."),
    ] = None,
) -> None:
    """Print the effective configuration as JSON, secrets masked: what this process sees."""
    if component is not None and component not in COMPONENTS:
        _fail(f"unknown component {component!r}: choose one of {', '.join(COMPONENTS)}")
    chosen = [component] if component else list(COMPONENTS)
    shown = {name: _settings(COMPONENTS[name]).model_dump(mode="json") for name in chosen}
    sys.stdout.write(json.dumps(shown[component] if component else shown, indent=2) + "\n")


store_app = typer.Typer(help="Look after the model store.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("check")
def store_check(
    store: StoreOption = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Remove the orphans (under the store's lock).")
    ] = False,
    actor: ActorOption = None,
) -> None:
    """Report what killed jobs left (orphans) and artifacts that are missing or changed
    (damage); exit 1 unless the store is clean. `--fix` removes orphans, never models."""
    from agi_credit.store import check_store

    with _errors_as_messages():
        report = check_store(_open_store(store), fix=fix, actor=_actor(actor))
    for orphan in report.removed:
        out.print(f"removed {orphan.path}: {orphan.why}", highlight=False)
    for orphan in report.orphans:
        out.print(f"orphan {orphan.path}: {orphan.why}", highlight=False)
    for damage in report.damage:
        out.print(f"[bold red]damaged[/] {damage}", highlight=False)
    if report.orphans:
        err.print("run `agi-credit store check --fix` to remove the orphans")
    if report.damage:
        err.print(
            "restore the damaged files from a backup; a predictor started now cannot serve "
            "the versions without them"
        )
    if not report.clean:
        raise typer.Exit(1)
    if not report.removed:
        out.print("the store is clean")


users_app = typer.Typer(help="Manage the users of the auth sidecar.", no_args_is_help=True)
app.add_typer(users_app, name="users")


UsersFileOption = Annotated[
    Path | None, typer.Option("--file", help="Users file (default: USERS_FILE).")
]


def _users_file(file: Path | None) -> Path:
    path = file or _settings(AuthSettings).users_file
    if path is None:
        _fail("no users file: pass --file or set USERS_FILE")
    return path


class RoleChoice(StrEnum):
    predict = "predict"
    admin = "admin"


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user name.")],
    file: UsersFileOption = None,
    role: Annotated[
        RoleChoice,
        typer.Option(help="predict: /predict, /model-info, v2 inference; admin: also the details."),
    ] = RoleChoice.predict,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Add or replace a user (enabled); the password is stored as an argon2id hash."""
    from agi_credit.auth import add_user

    path = _users_file(file)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        add_user(path, name, password, roles=[role.value])
    except ValueError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")
    err.print(f"{name} ({role.value}) saved in {path}", highlight=False)


def _set_disabled(name: str, file: Path | None, disabled: bool) -> None:
    from agi_credit.auth import set_disabled

    path = _users_file(file)
    try:
        set_disabled(path, name, disabled)
    except ValueError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")
    state = "disabled: its tokens stop working within seconds" if disabled else "enabled"
    err.print(f"{name} {state} ({path})", highlight=False)


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="The user name.")], file: UsersFileOption = None
) -> None:
    """Refuse the user's logins and tokens (a running sidecar re-reads the file)."""
    _set_disabled(name, file, True)


@users_app.command("enable")
def users_enable(
    name: Annotated[str, typer.Argument(help="The user name.")], file: UsersFileOption = None
) -> None:
    """Accept a disabled user again."""
    _set_disabled(name, file, False)


def main() -> None:
    app()
