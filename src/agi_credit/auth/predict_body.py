"""The /predict body in, and its answer out, without a Python object per row.

A body at MAX_REQUEST_BYTES (64 MiB) holds some 630,000 applicants. Parsed whole into a
list of dicts, validated by pydantic and answered with a list of dicts, it took 770 MB in
the sidecar. `PredictBodyReader` reads it as it arrives instead: the list is cut after a
row's `}` every `CUT_BYTES` or so, each piece is parsed by orjson and its values appended to
one `array("d")` per feature, and the piece is dropped. The raw body is never whole in
memory, and an applicant costs 8 bytes per feature.

Cutting is exact, not a guess. The piece `[P` + `]` (or `[0` + `, P` + `]` after the first)
is parsed by orjson; JSON's grammar is deterministic, so when it parses, the `}` ended an
element of the top-level list, and the body parses exactly when every piece does. When a
piece does not parse (its `}` was inside a string, or the JSON is broken) the cut waits for
twice as many bytes, and the rest is parsed at the end: the body is refused as not JSON
only when it is not.

The rules and messages are the ones the pydantic model `PredictBody` documents, checked in
the same order: not JSON; an empty list; an element that is not an object; an empty
object; then the first value that is not a number (booleans, strings and null are
refused), then the first row whose features differ from the first row's.
"""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from agi_credit.auth.errors import BadRequest
from agi_credit.auth.schemas import NOT_JSON
from agi_credit.auth.v2_binary import Scores

CUT_BYTES = 256 * 1024
"""Rows are parsed once this many bytes are waiting: about 2,500 applicants."""
ANSWER_ROWS = 10_000
"""Rows of the answer encoded at a time."""

_NUMBERS = frozenset({int, float})  # orjson's; bool is neither (nor a subclass of them here)
_WHITESPACE = b" \t\r\n"

# What is wrong with a body, most important first: the message of the lowest one found.
_NOT_JSON, _EMPTY, _NOT_OBJECTS, _NO_FEATURES, _NOT_A_NUMBER, _OTHER_FEATURES, _NONE = range(7)


@dataclass(frozen=True)
class Applicants:
    """A valid /predict body: one array of doubles per feature, in the first row's order."""

    columns: dict[str, array[float]]
    rows: int
    is_batch: bool


class PredictBodyReader:
    """`feed` the body's bytes as they come, then `close` for the applicants (or a
    `BadRequest` with the origin's message)."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._is_batch: bool | None = None  # None until the first byte that is not blank
        self._cut_once = False
        self._next_cut = CUT_BYTES
        self._seen = 0
        self._features: dict[str, None] | None = None
        self._columns: dict[str, array[float]] | None = {}
        self._errors: dict[int, str] = {}

    def feed(self, chunk: bytes) -> None:
        if _NOT_JSON in self._errors:
            return
        self._pending += chunk
        if self._is_batch is None:
            start = self._pending.lstrip(_WHITESPACE)[:1]
            if start:
                self._is_batch = start == b"["
        if self._is_batch and len(self._pending) >= self._next_cut:
            self._cut()

    def close(self) -> Applicants:
        if _NOT_JSON not in self._errors:
            if self._is_batch is None:
                self._errors[_NOT_JSON] = NOT_JSON  # empty, or blanks only
            else:
                rest = (b"[0" + self._pending) if self._cut_once else self._pending
                self._pending = bytearray()
                try:
                    values = orjson.loads(rest)
                except orjson.JSONDecodeError:
                    self._errors[_NOT_JSON] = NOT_JSON
                else:
                    del rest
                    if self._cut_once:
                        del values[0]
                    self._take(values if self._is_batch else [values])
        if self._seen == 0 and self._is_batch:
            self._errors.setdefault(_EMPTY, "empty batch: send at least one applicant")
        if self._errors:
            raise BadRequest(self._errors[min(self._errors)])
        assert self._columns is not None
        return Applicants(self._columns, self._seen, bool(self._is_batch))

    def _cut(self) -> None:
        end = self._pending.rfind(b"}")
        if end < 0:
            self._next_cut = 2 * len(self._pending)
            return
        piece = memoryview(self._pending)[: end + 1]
        try:
            values = orjson.loads(
                b"[0" + piece + b"]" if self._cut_once else piece.tobytes() + b"]"
            )
        except orjson.JSONDecodeError:
            # Inside a string or an object, or not JSON: wait for more, twice as much.
            self._next_cut = 2 * len(self._pending)
            return
        finally:
            piece.release()
        del self._pending[: end + 1]
        if self._cut_once:
            del values[0]
        self._cut_once = True
        self._next_cut = len(self._pending) + CUT_BYTES
        self._take(values)

    def _take(self, rows: list[Any]) -> None:
        """Rows `self._seen`... of the body: checked, and their values kept while all is
        well so far."""
        first = self._seen
        self._seen += len(rows)
        if not rows:
            return
        worst = min(self._errors, default=_NONE)
        if worst <= _NOT_OBJECTS:
            return
        if not all(type(row) is dict for row in rows):
            self._fail(_NOT_OBJECTS, "the body must be an object of features or a list of them")
            return
        if worst <= _NO_FEATURES:
            return
        if not all(rows):
            self._fail(_NO_FEATURES, "no features in the request")
            return
        if worst <= _NOT_A_NUMBER:
            return
        if self._features is None:
            self._features = dict.fromkeys(rows[0])
            self._columns = {name: array("d") for name in self._features}
        features = self._features.keys()
        if self._columns is not None and all(row.keys() == features for row in rows):
            for name, column in self._columns.items():
                values = [row[name] for row in rows]
                if not _NUMBERS.issuperset(map(type, values)):
                    break
                column.fromlist(values)
            else:
                return
        self._check_each(rows, first)

    def _check_each(self, rows: Sequence[dict[str, Any]], first: int) -> None:
        """Row by row, for the message: the first value that is not a number, else the first
        row whose features differ."""
        assert self._features is not None
        features = self._features.keys()
        for i, row in enumerate(rows, start=first):
            for name, value in row.items():
                if type(value) not in _NUMBERS:
                    self._fail(_NOT_A_NUMBER, f"invalid type for {name}{self._where(i)}")
                    return
            if row.keys() != features and _OTHER_FEATURES not in self._errors:
                missing = [name for name in features if name not in row]
                extra = [name for name in row if name not in features]
                problem = (
                    f"missing features: {missing}" if missing else f"unexpected features: {extra}"
                )
                self._fail(_OTHER_FEATURES, problem + self._where(i))

    def _where(self, row: int) -> str:
        return f" (row {row})" if self._is_batch else ""

    def _fail(self, kind: int, message: str) -> None:
        self._errors.setdefault(kind, message)
        self._columns = None  # the values are no longer needed


async def read_applicants(chunks: AsyncIterable[bytes], content_type: str | None) -> Applicants:
    """The applicants of a /predict body streamed in `chunks`; `BadRequest` when it is not a
    valid one. As the origin, a body without a Content-Type is read as JSON; a body with
    another type than JSON's is refused unread."""
    if content_type is not None and not _is_json(content_type):
        raise BadRequest(NOT_JSON)
    reader = PredictBodyReader()
    async for chunk in chunks:
        reader.feed(chunk)
    return reader.close()


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def answer(scores: Scores, *, is_batch: bool) -> memoryview:
    """The origin's answer: `{"model_version", "prediction", "prob_default"}` per row, a list
    for a batch; encoded `ANSWER_ROWS` rows at a time, so that no list of dicts holds them
    all, into one buffer (no copy of it is made for the response)."""
    if not is_batch:
        return memoryview(orjson.dumps(_rows(scores, 0, 1)[0]))
    out = bytearray(b"[")
    for start in range(0, len(scores.prob), ANSWER_ROWS):
        if start:
            out += b","
        out += orjson.dumps(_rows(scores, start, start + ANSWER_ROWS))[1:-1]
    out += b"]"
    return memoryview(out)


def _rows(scores: Scores, start: int, stop: int) -> list[dict[str, Any]]:
    version = scores.version
    return [
        {"model_version": version, "prediction": y, "prob_default": p}
        for p, y in zip(scores.prob[start:stop], scores.labels[start:stop], strict=True)
    ]
