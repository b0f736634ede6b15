"""The training job: data → split → train.R → validate → evaluate → register → gate → report.

Every step before registration works in a private staging directory; registration is one
store transaction. A failure anywhere leaves the store exactly as it was.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from agi_credit import rruntime
from agi_credit._files import sha256_of
from agi_credit.data import check_csv
from agi_credit.rruntime import RError, rscript_path
from agi_credit.settings import TrainingSettings
from agi_credit.store import ModelEntry, ModelStore, Status, utc_now
from agi_credit.training.errors import TrainingError
from agi_credit.training.gate import decide
from agi_credit.training.metrics import Metrics, evaluate
from agi_credit.training.report import write_model_card, write_plots
from agi_credit.training.split import Split, read_columns, stratified_split

if TYPE_CHECKING:
    from agi_credit.rruntime import RModel

__all__ = ["TrainingResult", "run_training"]

Log = Callable[[str], None]
_STAGED_MODEL = "model_v1.rds"
_STAGED_METADATA = "model_metadata.json"


@dataclass(slots=True)
class TrainingResult:
    entry: ModelEntry
    promoted: bool
    reason: str
    report_dir: Path
    timings: dict[str, float] = field(default_factory=dict)


def run_training(settings: TrainingSettings, *, log: Log = print) -> TrainingResult:
    """Train one version from `settings.data_path` and register it in the store at
    `settings.model_store`."""
    try:
        return _run(settings, ModelStore(settings.model_store), log=log)
    except OSError as exc:  # disk full, permissions…: the store was left as it was
        where = f"{exc.filename}: " if exc.filename else ""
        raise TrainingError(f"training failed: {where}{exc.strerror or exc}") from exc


def _run(config: TrainingSettings, store: ModelStore, *, log: Log) -> TrainingResult:
    data_path = config.data_path
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = now - clock
        clock = now

    if not config.train_script.is_file():
        raise TrainingError(f"training script not found: {config.train_script}")
    if not data_path.is_file():
        raise TrainingError(
            f"no training data at {data_path}. Put the real Home Credit application_train.csv "
            "there (Kaggle competition 'home-credit-default-risk'), point DATA_PATH or "
            "--data at it, or pass --synthetic to generate a stand-in with the same schema."
        )
    log(f"checking {data_path}")
    report = check_csv(data_path)
    if not report.ok:
        raise TrainingError(
            f"{data_path} cannot be used for training:\n  - " + "\n  - ".join(report.errors)
        )
    lap("check")

    with store.staging() as staging:
        split = stratified_split(
            data_path, staging, holdout_fraction=config.holdout_fraction, seed=config.split_seed
        )
        log(
            f"split {report.rows:,} rows: {split.train_rows:,} train, "
            f"{split.holdout_rows:,} holdout (stratified, seed {config.split_seed})"
        )
        lap("split")

        output = staging / "output"
        output.mkdir()
        _run_train_script(config, split.train_path, output, log)
        lap("train.R")

        model, features, script_metadata = _validate_artifact(output, split)
        prob = model.predict_proba(read_columns(split.holdout_path, list(features)))
        _check_probabilities(prob, split.holdout_rows)
        metrics = evaluate(split.holdout_target, prob)
        log(
            f"holdout: AUC {metrics.auc:.4f}, Gini {metrics.gini:.4f}, KS {metrics.ks:.4f}, "
            f"Brier {metrics.brier:.4f}, log loss {metrics.log_loss:.4f}"
        )
        lap("validate+evaluate")

        plots = staging / "report"
        plots.mkdir()
        write_plots(plots, split.holdout_target, prob, auc=metrics.auc)
        lap("plots")

        runtime = {
            **rruntime.r_environment(),
            "train_script": str(config.train_script),
            "train_script_sha256": sha256_of(config.train_script),
        }
        training_data = {
            "path": str(data_path),
            "sha256": report.sha256,
            "official": report.official,
            "rows": report.rows,
            "train_rows": split.train_rows,
            "holdout_rows": split.holdout_rows,
            "holdout_fraction": config.holdout_fraction,
            "split_seed": config.split_seed,
            "default_rate": report.default_rate,
        }
        result = _register(
            store,
            config,
            staged_rds=output / _STAGED_MODEL,
            features=features,
            metrics=metrics,
            runtime=runtime,
            training_data=training_data,
            script_metadata=script_metadata,
            plots=plots,
        )
        lap("register")
    result.timings = timings
    return result


def _run_train_script(config: TrainingSettings, train_csv: Path, output: Path, log: Log) -> None:
    script = config.train_script
    try:
        rscript = rscript_path()
    except RError as exc:
        raise TrainingError(str(exc)) from exc
    env = {**os.environ, "DATA_PATH": str(train_csv), "MODEL_OUTPUT_PATH": str(output)}
    env.setdefault("TZ", "UTC")
    log(f"running {config.train_script}")
    tail: collections.deque[str] = collections.deque(maxlen=12)
    with subprocess.Popen(
        [rscript, "--vanilla", str(config.train_script)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    ) as process:
        # Read R's output on a thread, so that a script that hangs silently still times out.
        reader = threading.Thread(target=_relay, args=(process.stdout, tail, log), daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=config.train_timeout_seconds)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            raise TrainingError(
                f"{script.name} ran longer than {config.train_timeout_seconds:g} s and was stopped"
            ) from exc
        except BaseException:  # stopped (SIGTERM, Ctrl-C): R stops with us
            process.kill()
            raise
        finally:
            reader.join(timeout=5)
    if code != 0:
        errors = [line for line in tail if "error" in line.lower()] or list(tail)[-3:]
        raise TrainingError(
            f"{config.train_script.name} failed (exit {code}): " + " | ".join(errors)
        )


def _relay(stream: IO[str], tail: collections.deque[str], log: Log) -> None:
    for line in stream:
        tail.append(line.rstrip())
        log(f"  R | {line.rstrip()}")


def _validate_artifact(
    output: Path, split: Split
) -> tuple[RModel, tuple[str, ...], dict[str, object]]:
    """The contract: model_v1.rds that R can load and model_metadata.json with features
    that the model and the data both have."""
    rds, metadata_file = output / _STAGED_MODEL, output / _STAGED_METADATA
    for path in (rds, metadata_file):
        if not path.is_file():
            raise TrainingError(f"train.R did not write {path.name} into MODEL_OUTPUT_PATH")
    try:
        script_metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TrainingError(f"{_STAGED_METADATA} is not valid JSON: {exc}") from exc
    features = script_metadata.get("features") if isinstance(script_metadata, dict) else None
    if (
        not isinstance(features, list)
        or not features
        or not all(isinstance(f, str) and f for f in features)
    ):
        raise TrainingError(f"{_STAGED_METADATA} must list the model's `features` as strings")
    try:
        model = rruntime.RModel.load(rds)
    except RError as exc:
        raise TrainingError(f"the trained model does not load in R: {exc}") from exc
    try:
        model.check_features(features)
    except RError as exc:
        raise TrainingError(f"{exc} ({_STAGED_METADATA})") from exc
    with split.holdout_path.open(encoding="utf-8", newline="") as stream:
        header = next(csv.reader(stream), [])
    if missing := [f for f in features if f not in header]:
        raise TrainingError(f"features not in the data: {missing}")
    return model, tuple(features), script_metadata


def _check_probabilities(prob: np.ndarray, rows: int) -> None:
    if prob.shape != (rows,):
        raise TrainingError(f"the model returned {prob.size} predictions for {rows} rows")
    if not np.all(np.isfinite(prob)) or prob.min() < 0 or prob.max() > 1:
        raise TrainingError("the model returned probabilities outside [0, 1] or NaN")


def _register(
    store: ModelStore,
    config: TrainingSettings,
    *,
    staged_rds: Path,
    features: tuple[str, ...],
    metrics: Metrics,
    runtime: dict[str, object],
    training_data: dict[str, object],
    script_metadata: dict[str, object],
    plots: Path,
) -> TrainingResult:
    with store.transaction(actor=config.actor) as txn:
        version = txn.next_version()
        artifact = txn.install_artifact(staged_rds, version)
        current = (
            txn.metadata.find(txn.metadata.current_version)
            if txn.metadata.current_version
            else None
        )
        decision = decide(
            auc=metrics.auc,
            min_auc=config.min_auc,
            auc_tolerance=config.auc_tolerance,
            current_version=current.version if current else None,
            current_auc=(current.metrics or {}).get("auc") if current else None,
        )
        entry = ModelEntry(
            version=version,
            created_at=utc_now(),
            features=list(features),
            artifact=artifact,
            metrics=metrics.as_dict(),
            decision_threshold=config.decision_threshold,
            training_data=training_data,
            runtime=runtime,
            gate=decision.as_dict(),
            model_metadata=script_metadata,
        )
        txn.add(entry)
        if decision.promote:
            txn.promote(version, reason=f"promotion gate: {decision.reason}")
        else:
            entry.status = Status.CANDIDATE
            entry.status_reason = decision.reason
        report_dir = txn.create_report_dir(version)
        try:
            for png in plots.iterdir():
                shutil.copyfile(png, report_dir / png.name)
            write_model_card(report_dir, entry)
        except OSError as exc:
            raise TrainingError(
                f"cannot write the report into {report_dir}: {exc.strerror or exc}"
            ) from exc
    return TrainingResult(
        entry=entry, promoted=decision.promote, reason=decision.reason, report_dir=report_dir
    )
