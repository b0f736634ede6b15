"""The chart over a release's life: install -> upgrade (no-op) -> upgrade (a changed training
spec) -> rollback, each revision rendered by Helm's SDK and applied as Helm 3 applies it
(tests/chart/helm_release.py). What a user relies on: a no-op upgrade starts nothing, no
upgrade kills a training, the first install trains only an empty store, a rollback works,
and a retrain is one command."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.chart import CHART, Rendered, load_values, merged, pod_specs
from tests.chart.helm_release import Cluster, HelmError, Key, manifest

KSERVE = load_values(CHART / "ci" / "kserve-values.yaml")
MORE_ROWS = {"training": {"data": {"synthetic": {"rows": 30000}}}}


def revision(values: dict[str, Any], number: int) -> Rendered:
    """Revision `number` as Helm renders it: an install for 1, an upgrade after."""
    return Rendered.of(f"r{number}", values, revision=number)


def jobs(keys: list[Key]) -> list[Key]:
    return [k for k in keys if k[0] == "Job"]


@pytest.fixture(params=["default", "kserve"])
def values(request: pytest.FixtureRequest) -> dict[str, Any]:
    """No values at all (a prod install that generates its secrets), and kserve mode."""
    return {} if request.param == "default" else KSERVE


def test_install_then_noop_upgrade_then_changed_upgrade_then_rollback(
    values: dict[str, Any],
) -> None:
    cluster = Cluster()
    r1 = manifest(revision(values, 1).objects)
    cluster.install(r1)
    created, _, _ = cluster.log()
    (first_job,) = jobs(created)
    train = next(pod_specs(r1[first_job]))["containers"][0]
    assert "--if-empty" in train["args"]  # the first install trains only an empty store

    # A no-op upgrade: nothing created, nothing deleted, no pod rolled.
    r2 = manifest(revision(values, 2).objects)
    cluster.upgrade(r1, r2)
    created, patched, deleted = cluster.log()
    assert created == [] and deleted == []
    assert not [k for k in patched if k[0] in ("Job", "Deployment", "InferenceService")]
    assert first_job in cluster.objects  # kept, running or finished, not in the release

    # An upgrade that changes the training spec: no Job created, none deleted or patched.
    r3 = manifest(revision(merged(values, MORE_ROWS), 3).objects)
    cluster.upgrade(r2, r3)
    created, patched, deleted = cluster.log()
    assert jobs(created) == jobs(patched) == jobs(deleted) == []
    cronjob = next(k for k in r3 if k[0] == "CronJob")
    assert cronjob in patched  # the retrain template follows the new spec
    assert first_job in cluster.objects

    # Rolling back to revision 2 restores its CronJob; no Job is touched.
    cluster.rollback(r3, r2)
    created, patched, deleted = cluster.log()
    assert jobs(created) == jobs(patched) == jobs(deleted) == []
    assert cluster.objects[cronjob] == r2[cronjob]


def test_rolling_back_to_the_install_revision_waits_for_the_first_jobs_ttl() -> None:
    """Helm 3 refuses a target object that exists outside the current release: revision
    1's Job, kept, until ttlSecondsAfterFinished removes it. Then the rollback re-creates
    it, and it trains nothing, the store being filled (--if-empty). values.yaml says so."""
    cluster = Cluster()
    r1 = manifest(revision({}, 1).objects)
    r2 = manifest(revision({}, 2).objects)
    cluster.install(r1)
    cluster.upgrade(r1, r2)
    with pytest.raises(HelmError, match="no Job with the name"):
        cluster.rollback(r2, r1)
    cluster.expire("Job")
    cluster.log()
    cluster.rollback(r2, r1)
    created, _, _ = cluster.log()
    (job,) = jobs(created)
    assert "--if-empty" in next(pod_specs(r1[job]))["containers"][0]["args"]


def test_a_reinstall_over_a_kept_first_job_adopts_it_unchanged_or_names_a_new_one() -> None:
    """`helm uninstall` keeps the first Job (resource-policy keep). Installing again with
    the same spec adopts it as it is; with another spec, the name differs: never a patch of
    its immutable pod template."""
    cluster = Cluster()
    first = manifest(revision({}, 1).objects)
    cluster.install(first)
    kept = {k: v for k, v in cluster.objects.items() if k[0] == "Job"}
    again = Cluster(objects=dict(kept))
    again.upgrade({}, manifest(revision({}, 1).objects))  # install adopts what it owns
    assert jobs(again.log()[0]) == []
    other = Cluster(objects=dict(kept))
    other.upgrade({}, manifest(revision(MORE_ROWS, 1).objects))
    assert len(jobs(other.log()[0])) == 1


def test_the_retrain_command_is_a_job_from_the_cronjob_in_every_revision() -> None:
    for number, values in [(1, {}), (2, {}), (3, MORE_ROWS)]:
        rendered = revision(values, number)
        cronjob = rendered.one("CronJob")
        assert cronjob["spec"]["suspend"] is True  # no schedule unless training.cronJob.enabled
        train = next(pod_specs(cronjob))["containers"][0]
        assert "--if-empty" not in train["args"]
        assert f"create job --from=cronjob/{cronjob['metadata']['name']}" in rendered.notes
