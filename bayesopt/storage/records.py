"""What the storage reads back: studies, trials and queued points, never refused for a bad row.

A row written by bayesopt always decodes cleanly. A row edited by hand, by
another program or by a damaged file may not: ``row_to_trial`` and
``row_to_queued`` never raise, they return the row with what is wrong named
(``Trial.attrs["invalid"]``, ``QueuedPoint.problem``) so that one bad row
leaves the rest of the study readable and the caller decides what to skip.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from bayesopt.trial import Trial, TrialState

__all__ = [
    "MAX_STUDY_NAME",
    "QueuedPoint",
    "Snapshot",
    "StudyRecord",
    "decode_object",
    "dumps",
    "row_to_queued",
    "row_to_trial",
    "stored_attrs",
    "validate_study_name",
]

#: Longest study name (characters); the ``name`` column is ``String(512)``.
MAX_STUDY_NAME = 512


@dataclass(frozen=True)
class StudyRecord:
    """A stored study's identity and settings.

    Attributes:
        id: The study's row id in this database.
        name: The study name.
        direction: ``"minimize"`` or ``"maximize"``.
        space: The space as JSON (``Space.to_json``).
        seed: The study seed.
        n_initial: Sobol points before the model.
        attrs: JSON attributes (surrogate, acquisition, ...).
        uid: A uuid4 made when the study was created: unique across databases,
            it is the ``study_key`` of the study's trials.
    """

    id: int
    name: str
    direction: str
    space: dict[str, Any]
    seed: int
    n_initial: int
    attrs: dict[str, Any]
    uid: str = ""


class QueuedPoint(NamedTuple):
    """A point waiting in a study's queue.

    Attributes:
        id: The queue row id (give it to ``create_trials(queue_ids=...)`` or
            ``drop_queued``).
        params: The point, ``{}`` when the stored text is unreadable.
        problem: ``None``, or why the stored row cannot be used.
    """

    id: int
    params: dict[str, Any]
    problem: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """A consistent read of a study: its trials, the next id and the queue."""

    trials: list[Trial]
    next_trial_id: int
    queue: list[QueuedPoint]


def validate_study_name(name: Any) -> str:
    """Return ``name`` if it can name a study in every backend.

    Args:
        name: The study name.

    Returns:
        ``name``.

    Raises:
        ValueError: not a non-empty ``str`` of at most ``MAX_STUDY_NAME``
            characters without a NUL character (the message shows the value,
            cut to 80 characters).
    """
    problem = None
    if not isinstance(name, str):
        problem = f"a str, got {type(name).__name__}"
    elif not name:
        problem = "a non-empty name"
    elif len(name) > MAX_STUDY_NAME:
        problem = f"at most {MAX_STUDY_NAME} characters, got {len(name)}"
    elif "\x00" in name:
        problem = "no NUL character, got one"
    if problem is None:
        return name
    shown = repr(name)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise ValueError(f"study: expected {problem}: {shown}.")


def dumps(obj: Any) -> str:
    """JSON text of ``obj``; non-finite floats are refused (``ValueError``)."""
    return json.dumps(obj, allow_nan=False)


def decode_object(text: Any, column: str) -> tuple[dict[str, Any], str | None]:
    """Decode a JSON object column: ``(object, None)``, or ``({}, problem)``.

    Args:
        text: The stored text.
        column: The column name, for the problem.
    """
    try:
        obj = json.loads(text)
    except (TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        return {}, f"{column} is not valid JSON ({exc}): {_cut(text)}"
    if not isinstance(obj, dict):
        return {}, f"{column} is not a JSON object: {_cut(text)}"
    return obj, None


def stored_attrs(text: Any) -> dict[str, Any]:
    """The stored attributes to merge new ones into; unreadable text is kept as a string."""
    attrs, problem = decode_object(text, "attrs")
    if problem is not None:
        attrs = {"unreadable_attrs": str(text)[:10_000]}
    return attrs


def row_to_trial(row: Any, study: str | None, study_key: str | None) -> Trial:
    """A trials row as a ``Trial``; never raises.

    A row that cannot be used as stored becomes a trial with
    ``attrs["invalid"]`` naming each problem (and the column): params or attrs
    that are not a JSON object (read as ``{}``), an unknown state (read as
    FAILED), a COMPLETE trial whose value is NULL, not a number or not finite,
    an id that is not an integer (read as -1).

    Args:
        row: A row of the trials table.
        study: The study's name.
        study_key: The study's ``uid``.
    """
    problems: list[str] = []
    params, problem = decode_object(row.params, "params")
    if problem:
        problems.append(problem)
    attrs, problem = decode_object(row.attrs, "attrs")
    if problem:
        problems.append(problem)
    try:
        trial_id = int(row.trial_id)
    except (TypeError, ValueError):
        problems.append(f"trial_id {_cut(row.trial_id)} is not an integer")
        trial_id = -1
    try:
        state = TrialState(row.state)
    except ValueError:
        problems.append(f"state {_cut(row.state)} is not a trial state")
        state = TrialState.FAILED
    value = row.value
    if value is not None:
        try:
            value = float(value)
        except (TypeError, ValueError):
            problems.append(f"value {_cut(value)} is not a number")
            value = None
    if state is TrialState.COMPLETE and (value is None or not math.isfinite(value)):
        problems.append(f"value is {value!r} in a COMPLETE trial")
    if row.heartbeat is not None:
        try:
            attrs["heartbeat"] = float(row.heartbeat)
        except (TypeError, ValueError):
            problems.append(f"heartbeat {_cut(row.heartbeat)} is not a number")
    if problems:
        attrs["invalid"] = "; ".join(problems)
    return Trial(trial_id, params, state, value, attrs, study=study, study_key=study_key)


def row_to_queued(row: Any) -> QueuedPoint:
    """A queue row (``id``, ``params``) as a ``QueuedPoint``; never raises."""
    params, problem = decode_object(row.params, "params")
    if problem:
        problem = f"queued point {row.id}: {problem}"
    return QueuedPoint(int(row.id), params, problem)


def _cut(value: Any, n: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."
