"""The only module that imports rpy2: load R models and score them.

R is single-threaded and not re-entrant: call everything here from one thread.
Two model shapes are understood:
- `recipe+glm`: a list with a prepped `recipe` and a `fit` (glm), as train.R saves;
  scored as `predict(fit, bake(recipe, newdata), type = "response")`.
- `generic`: any other object with a `predict` method taking `newdata` and
  `type = "response"` (a plain glm, say).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from agi_credit.rruntime.child import HELPERS_R
from agi_credit.rruntime.errors import RError

os.environ.setdefault("TZ", "UTC")  # R asks timedatectl for the zone otherwise, noisily
_LD_LIBRARY_PATH = os.environ.get("LD_LIBRARY_PATH")

import rpy2.rinterface_lib.callbacks as _callbacks  # noqa: E402 - after the environment is saved
import rpy2.robjects as ro  # noqa: E402 - after the environment is saved
from rpy2.rinterface_lib.embedded import RRuntimeError  # noqa: E402 - after the environment is saved
from rpy2.robjects import numpy2ri  # noqa: E402 - after the environment is saved
from rpy2.robjects.conversion import localconverter  # noqa: E402 - after the environment is saved

# Starting R prepends R's library directories to LD_LIBRARY_PATH in os.environ, which every
# child process would then inherit (a Python child loads the wrong shared libraries). This
# process's dynamic linker read the variable at start-up already: put it back.
if _LD_LIBRARY_PATH is None:
    os.environ.pop("LD_LIBRARY_PATH", None)
else:
    os.environ["LD_LIBRARY_PATH"] = _LD_LIBRARY_PATH

__all__ = ["LinearForm", "ModelShape", "RModel", "RecipeStep", "linear_form", "r_environment"]

ModelShape = Literal["recipe+glm", "generic"]
F = TypeVar("F", bound=Callable[..., Any])
_log = logging.getLogger("agi_credit.r")

_HELPER_NAMES = ("shape", "features", "predict_columns", "linear_form", "versions")


def _with_r_conversion(function: F) -> F:
    """rpy2 keeps its conversion rules in a ContextVar, which a new thread does not inherit:
    every entry point sets them, so any (single) thread may call R."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with localconverter(ro.default_converter):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _r_message(exc: Exception) -> str:
    text = str(exc).strip().replace("\n", " ")
    return text[:500]


def _log_r_output(level: int) -> Callable[[str], None]:
    def write(text: str) -> None:
        if text.strip():
            _log.log(level, text.strip(), extra={"event": "r_output"})

    return write


class _Session:
    """The embedded R session and our helper functions, made once."""

    _helpers: ClassVar[ro.ListVector | None] = None

    @classmethod
    def helpers(cls) -> ro.ListVector:
        if cls._helpers is None:
            # R's console output goes to our logs, not straight to stdout.
            _callbacks.consolewrite_print = _log_r_output(logging.DEBUG)
            _callbacks.consolewrite_warnerror = _log_r_output(logging.WARNING)
            names = ", ".join(f"{n} = agi_{n}" for n in _HELPER_NAMES)
            try:
                cls._helpers = ro.r(
                    f'local({{ sys.source("{HELPERS_R}", envir = environment()); list({names}) }})'
                )
            except RRuntimeError as exc:
                raise RError(f"cannot start R: {_r_message(exc)}") from exc
        return cls._helpers

    @classmethod
    def call(cls, name: str, *args: object) -> object:
        return cls.helpers().rx2(name)(*args)


@dataclass(frozen=True)
class RModel:
    """An R model read from an .rds file, with the shape and features R reports."""

    path: Path
    shape: ModelShape
    features: tuple[str, ...]
    _robj: object

    @classmethod
    @_with_r_conversion
    def load(cls, path: Path) -> RModel:
        """`readRDS(path)`: `RError` for a missing, corrupt or unusable file."""
        if not path.is_file():
            raise RError(f"model file not found: {path}")
        helpers = _Session.helpers()
        try:
            robj = ro.r["readRDS"](str(path))
            shape: ModelShape = (
                "recipe+glm" if str(helpers.rx2("shape")(robj)[0]) == "recipe+glm" else "generic"
            )
            features = tuple(str(f) for f in helpers.rx2("features")(robj, shape))
        except RRuntimeError as exc:
            raise RError(f"R cannot read {path.name}: {_r_message(exc)}") from exc
        return cls(path=path, shape=shape, features=features, _robj=robj)

    def check_features(self, declared: Sequence[str]) -> None:
        """`RError` when the model names features and they are not `declared` ones (the
        features metadata.json or model_metadata.json lists for it)."""
        if self.features and set(self.features) != set(declared):
            raise RError(
                f"{self.path.name}: model features {list(self.features)} differ "
                f"from the declared features {list(declared)}"
            )

    @_with_r_conversion
    def predict_proba(self, columns: Mapping[str, Sequence[float] | np.ndarray]) -> np.ndarray:
        """P(default) for each row; `columns` maps each feature to its values (NaN = missing).

        Values are passed to R as doubles: recipes' bake rejects integer columns for a
        recipe prepped on doubles.
        """
        arrays = {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            raise RError("all feature columns must have the same length")
        (n_rows,) = lengths
        with localconverter(ro.default_converter + numpy2ri.converter):
            frame = ro.ListVector({name: ro.FloatVector(a) for name, a in arrays.items()})
        try:
            result = _Session.call("predict_columns", self._robj, frame)
        except RRuntimeError as exc:
            raise RError(f"R predict failed for {self.path.name}: {_r_message(exc)}") from exc
        probabilities = np.asarray(result, dtype=np.float64)
        if probabilities.shape != (n_rows,):
            raise RError(f"R predict returned {probabilities.size} values for {n_rows} rows")
        return probabilities


@dataclass(frozen=True)
class RecipeStep:
    """One trained recipes step: its kind and the statistics it applies (by column)."""

    kind: str
    skip: bool
    trained: bool
    values: dict[str, dict[str, float]]
    """`medians` for impute_median; `means` and `sds` for normalize."""


@dataclass(frozen=True)
class LinearForm:
    """What a recipe + glm model computes, as R stores it: steps, then a linear predictor."""

    family: str
    link: str
    coefficients: dict[str, float]
    terms: tuple[str, ...]
    has_offset: bool
    steps: tuple[RecipeStep, ...]


def _named(vector: object) -> dict[str, float]:
    if vector is None or vector is ro.NULL:
        return {}
    names = list(vector.names) if vector.names is not ro.NULL else []  # type: ignore[attr-defined]
    return {str(n): float(v) for n, v in zip(names, vector, strict=True)}  # type: ignore[call-overload]


@_with_r_conversion
def linear_form(model: RModel) -> LinearForm | None:
    """The steps and coefficients of a `recipe+glm` model, read from R; None otherwise."""
    if model.shape != "recipe+glm":
        return None
    try:
        form = _Session.call("linear_form", model._robj)
    except RRuntimeError as exc:
        raise RError(
            f"cannot read the model structure of {model.path.name}: {_r_message(exc)}"
        ) from exc
    steps = []
    for step in form.rx2("steps"):  # type: ignore[attr-defined]
        values = {key: _named(step.rx2(key)) for key in ("medians", "means", "sds")}
        steps.append(
            RecipeStep(
                kind=str(step.rx2("kind")[0]),
                skip=bool(step.rx2("skip")[0]),
                trained=bool(step.rx2("trained")[0]),
                values={k: v for k, v in values.items() if v},
            )
        )
    return LinearForm(
        family=str(form.rx2("family")[0]),  # type: ignore[attr-defined]
        link=str(form.rx2("link")[0]),  # type: ignore[attr-defined]
        coefficients=_named(form.rx2("coefficients")),  # type: ignore[attr-defined]
        terms=tuple(str(t) for t in form.rx2("terms")),  # type: ignore[attr-defined]
        has_offset=bool(form.rx2("has_offset")[0]),  # type: ignore[attr-defined]
        steps=tuple(steps),
    )


@_with_r_conversion
def r_environment() -> dict[str, object]:
    """R's version and the versions of the packages a model needs."""
    versions = _Session.call("versions")
    r_version = str(versions.rx2("r")[0])  # type: ignore[attr-defined]
    packages = versions.rx2("packages")  # type: ignore[attr-defined]
    return {
        "r_version": r_version,
        "packages": {str(k): str(v) for k, v in zip(packages.names, packages, strict=True)},
    }
