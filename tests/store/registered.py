"""Versions registered the way the training job does, without R (the artifact is opaque)."""

from __future__ import annotations

from agi_credit.store import ModelEntry, ModelStore, utc_now

FEATURES = ["AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "AMT_GOODS_PRICE"]


def register(
    store: ModelStore, *, promote: bool = True, auc: float = 0.6, actor: str = "tester"
) -> str:
    """Register a version the way the training job does (the artifact is opaque here)."""
    staged = store.root.parent / f"staged-{utc_now().replace(' ', '_')}.rds"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(b"an R model")
    with store.transaction(actor=actor) as txn:
        version = txn.next_version()
        artifact = txn.install_artifact(staged, version)
        txn.add(
            ModelEntry(
                version=version,
                created_at=utc_now(),
                features=FEATURES,
                artifact=artifact,
                metrics={"auc": auc},
            )
        )
        if promote:
            txn.promote(version)
    return version
