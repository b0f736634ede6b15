"""What Helm 3 does to a cluster's objects on install, upgrade and rollback, from its source
at v3.19.5, so that the chart's upgrade semantics are tested without a cluster.

Modelled (each rule names its file and function):
- `pkg/kube/client.go`, `update`: each target object is created when the cluster lacks
  it, else patched; an object of the target that exists but is not in the current release
  fails ("no <Kind> with the name ... found"). Then each object of the current release
  that the target lacks is deleted, unless annotated `helm.sh/resource-policy: keep`.
- `pkg/kube/client.go`, `updateResource`: an empty patch sends nothing.
- `pkg/action/upgrade.go`, `performUpgrade`, and `pkg/action/validate.go`,
  `existingResourceConflict`: before an upgrade, target objects the cluster already has
  and that carry this release's ownership are adopted into the current list.
- `pkg/action/rollback.go`, `performRollback`: `Update(current, target)` with the stored
  manifest of the revision rolled back to, and no adoption step.
The API server's part: a Job's pod template is immutable (a patch that changes it fails).
Hooks (`helm test`) are outside releases' manifests and left out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (kind, name)
KEEP = ("helm.sh/resource-policy", "keep")


class HelmError(Exception):
    """An install, upgrade or rollback that Helm (or the API server) refuses."""


def key(obj: dict[str, Any]) -> Key:
    return obj["kind"], obj["metadata"]["name"]


def manifest(objects: list[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """A release's manifest: its objects without hooks, by (kind, name)."""
    return {
        key(o): o for o in objects if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})
    }


@dataclass
class Cluster:
    """The objects on a cluster, and what happened to them, operation by operation."""

    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    created: list[Key] = field(default_factory=list)
    patched: list[Key] = field(default_factory=list)
    deleted: list[Key] = field(default_factory=list)

    def log(self) -> tuple[list[Key], list[Key], list[Key]]:
        """(created, patched, deleted) since the last call."""
        done = (self.created, self.patched, self.deleted)
        self.created, self.patched, self.deleted = [], [], []
        return done

    def install(self, target: dict[Key, dict[str, Any]]) -> None:
        self.update({}, target)

    def upgrade(
        self, current: dict[Key, dict[str, Any]], target: dict[Key, dict[str, Any]]
    ) -> None:
        # existingResourceConflict: objects of this release the cluster already has are adopted.
        adopted = {k: self.objects[k] for k in target if k not in current and k in self.objects}
        self.update({**current, **adopted}, target)

    def rollback(
        self, current: dict[Key, dict[str, Any]], target: dict[Key, dict[str, Any]]
    ) -> None:
        self.update(current, target)

    def expire(self, kind: str) -> None:
        """What ttlSecondsAfterFinished does to the finished objects of `kind`."""
        for k in [k for k in self.objects if k[0] == kind]:
            obj = self.objects[k]
            if obj["spec"].get("ttlSecondsAfterFinished") is not None:
                del self.objects[k]

    def update(
        self, original: dict[Key, dict[str, Any]], target: dict[Key, dict[str, Any]]
    ) -> None:
        for k, obj in target.items():
            if k not in self.objects:
                self.objects[k] = copy.deepcopy(obj)
                self.created.append(k)
            elif k not in original:
                raise HelmError(f"no {k[0]} with the name {k[1]!r} found")
            elif self.objects[k] != obj:
                self._patch(k, obj)
        for k in original.keys() - target.keys():
            annotations = self.objects.get(k, {}).get("metadata", {}).get("annotations") or {}
            if k in self.objects and annotations.get(KEEP[0]) != KEEP[1]:
                del self.objects[k]
                self.deleted.append(k)

    def _patch(self, k: Key, obj: dict[str, Any]) -> None:
        live = self.objects[k]
        if k[0] == "Job" and live["spec"]["template"] != obj["spec"]["template"]:
            raise HelmError(f"Job.batch {k[1]!r} is invalid: spec.template: field is immutable")
        self.objects[k] = copy.deepcopy(obj)
        self.patched.append(k)
