"""Every rendered object is valid: Kubernetes' schemas (strict), KServe's v1beta1 model for
the InferenceService, the CRDs' structure for ServiceMonitor and HTTPRoute."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.chart.chart import (
    KUBERNETES_VERSIONS,
    Rendered,
    rendered_case,
    validate,
    validate_inference_service,
)

DNS_1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
STANDARD_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/component",
)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_validates(rendered: Rendered, version: str) -> None:
    assert rendered.objects
    for obj in rendered.objects:
        validate(obj, version)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda isvc: isvc["spec"]["predictor"]["containers"][0].update(portz=[]),
        lambda isvc: isvc["spec"]["predictor"].update(replicas=2),
        lambda isvc: isvc["spec"].update(predictr={}),
        lambda isvc: isvc["spec"]["predictor"]["containers"][1].pop("name"),
        lambda isvc: isvc["spec"]["predictor"].update(minReplicas="1"),
    ],
    ids=["unknown-container-field", "unknown-predictor-field", "typo", "no-name", "wrong-type"],
)
def test_the_kserve_check_refuses_what_kserve_would_not_know(
    mutate: Callable[[dict[str, Any]], object],
) -> None:
    isvc = copy.deepcopy(rendered_case("kserve").one("InferenceService"))
    mutate(isvc)
    with pytest.raises(AssertionError):
        validate_inference_service(isvc, KUBERNETES_VERSIONS[-1])


def test_every_object_has_a_valid_unique_name_and_the_release_namespace(rendered: Rendered) -> None:
    seen = set()
    for obj in rendered.objects:
        name = obj["metadata"]["name"]
        assert DNS_1123_SUBDOMAIN.match(name) and len(name) <= 63, name
        assert (obj["kind"], name) not in seen
        seen.add((obj["kind"], name))
        assert obj["metadata"]["namespace"] == "ml", name


def test_the_chart_objects_carry_the_standard_labels(rendered: Rendered) -> None:
    extra = {(o["kind"], o["metadata"]["name"]) for o in rendered.values.get("extraDeploy", [])}
    for obj in rendered.objects:
        if (obj["kind"], obj["metadata"]["name"]) in extra:
            continue
        labels = obj["metadata"].get("labels", {})
        missing = [k for k in STANDARD_LABELS if k not in labels]
        # The ServiceAccount and the ConfigMap serve every component.
        if obj["kind"] in ("ServiceAccount", "ConfigMap"):
            missing.remove("app.kubernetes.io/component")
        assert not missing, (obj["kind"], missing)
        assert labels["app.kubernetes.io/instance"] == "credit"
