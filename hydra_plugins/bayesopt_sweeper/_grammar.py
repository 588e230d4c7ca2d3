"""Hydra's override grammar -> a ``bayesopt`` search space, and points -> overrides.

The mapping (DESIGN.md, "Hydra"):

=================================  ===============================================
override                           parameter
=================================  ===============================================
``x=interval(a, b)``               ``Float(a, b)``
``x=int(interval(a, b))``          ``Int(a, b)``
``x=tag(log, interval(a, b))``     ``Float(a, b, log=True)`` (also for ``int(...)``)
``x=range(a, b)``                  ``Int(a, b - 1)``: the stop is excluded
``x=range(a, b, s)``               ``Int(a, last, step=s)``; a float bound or step
                                   gives ``Float(a, last, step=s)``
``x=tag(log, range(a, b))``        ``Int(a, b - 1, log=True)``
``x=choice(u, v, ...)``, ``x=u,v``  ``Categorical([u, v, ...])``
``x=glob(...)``                    ``Categorical`` of the matching config-group options
``x=3``, ``~x``, ``+x=3``          fixed: passed unchanged to every job
=================================  ===============================================

``shuffle(...)`` is accepted and ignored (the order of a sweep means nothing
to the optimizer). Overrides given later win, so command-line arguments
override ``hydra.sweeper.params``.

This module imports Hydra's parser and ``bayesopt.space`` only (no torch).
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    Quote,
    QuotedString,
    RangeSweep,
    Transformer,
)

from bayesopt.space import Categorical, Float, Int, Parameter, Space

__all__ = ["SearchSpace", "format_value", "parse_search_space", "parse_override"]

# Strings that Hydra's grammar reads back as the same unquoted string; anything
# else (spaces, commas, brackets, keywords such as ``null`` or ``true``, text
# that looks like a number) is single-quoted.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_\-/.]*")
_KEYWORDS = {"true", "false", "null", "inf", "nan"}
# the start of an OmegaConf interpolation and the backslashes before it
_INTERPOLATION = re.compile(r"(\\*)\$\{")


@dataclass
class SearchSpace:
    """What a sweep varies and what it fixes.

    Attributes:
        params: ``{name: Float | Int | Categorical}``, sorted by name (so the
            stored study does not depend on the order of the arguments).
        keys: ``{name: key element}`` as written in an override (``+x``,
            ``db@pkg``): the prefix a job's override needs.
        raw: Names of categoricals whose choices are override strings (lists,
            dicts) to be passed to the job verbatim.
        fixed: Overrides passed unchanged to every job (``x=3``, ``~y``).
    """

    params: dict[str, Parameter] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    raw: set[str] = field(default_factory=set)
    fixed: list[str] = field(default_factory=list)

    def overrides(self, point: Mapping[str, Any]) -> list[str]:
        """The override strings of one job: the fixed ones, then ``key=value`` per parameter.

        Only the declared parameters are emitted, each value checked against its
        parameter first (a point read back from a database is data, never an
        override of its own). Strings are quoted, with ``${`` escaped, so the
        job receives exactly the value; the override text of a list or dict
        choice is emitted as declared.

        Args:
            point: ``{name: value}`` of every parameter (other keys are refused).

        Raises:
            ValueError / TypeError: a missing or unknown name, or a value outside
                its parameter.
        """
        checked = Space(self.params).validate(point)
        out = list(self.fixed)
        for name in self.params:
            value = checked[name]
            text = str(value) if name in self.raw else format_value(value)
            out.append(f"{self.keys[name]}={text}")
        return out


def format_value(value: Any) -> str:
    """A value as the right-hand side of an override that Hydra parses back to it.

    Raises:
        TypeError: a value that is not a JSON scalar.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and value.lower() not in _KEYWORDS:
            return value
        return QuotedString(text=escape_interpolations(value), quote=Quote.single).with_quotes()
    raise TypeError(f"override value: expected a JSON scalar, got {value!r}.")


def escape_interpolations(text: str) -> str:
    r"""``text`` escaped for OmegaConf, which resolves ``${...}`` even in a quoted override.

    Each ``${`` preceded by ``k`` backslashes becomes ``2k + 1`` backslashes and
    ``${``: OmegaConf reads a doubled backslash before an interpolation as one
    backslash and ``\${`` as a literal ``${``. Other backslashes are literal to
    OmegaConf (Hydra's quoting escapes those before a quote), so the value the
    job's config holds is ``text``.
    """
    return _INTERPOLATION.sub(lambda m: "\\" * (2 * len(m.group(1))) + "\\${", text)


def _plain(element: Any) -> Any:
    """A parsed grammar element as a plain Python value (quoted strings unquoted)."""
    if isinstance(element, QuotedString):
        return element.text
    return element


def _name(override: Override) -> str:
    return (
        override.key_or_group
        if override.package is None
        else f"{override.key_or_group}@{override.package}"
    )


def _interval(name: str, sweep: IntervalSweep) -> Parameter:
    log = "log" in sweep.tags
    _check_tags(name, sweep.tags)
    if isinstance(sweep.start, int) and isinstance(sweep.end, int):
        return Int(sweep.start, sweep.end, log=log)
    return Float(float(sweep.start), float(sweep.end), log=log)


def _range(name: str, sweep: RangeSweep) -> Parameter:
    _check_tags(name, sweep.tags)
    log = "log" in sweep.tags
    start, stop, step = sweep.start, sweep.stop, sweep.step
    if step == 0:
        raise ValueError(
            f"parameter {name!r}: range step must not be 0, got range({start}, {stop}, 0)."
        )
    integral = all(isinstance(v, int) for v in (start, stop, step))
    # Decimal arithmetic as Hydra's own FloatRange, so 0.1 steps land on the grid
    d_start, d_stop, d_step = (decimal.Decimal(str(v)) for v in (start, stop, step))
    n = int(((d_stop - d_start) / d_step).to_integral_value(rounding=decimal.ROUND_CEILING))
    if n < 2:
        raise ValueError(
            f"parameter {name!r}: range({start}, {stop}, {step}) has {max(n, 0)} value(s) "
            f"(the stop is excluded); a sweep needs at least two. Write `{name}=<value>` "
            "to fix a parameter."
        )
    last = d_start + (n - 1) * d_step
    low, high = min(d_start, last), max(d_start, last)
    step_abs = abs(d_step)
    if integral:
        return Int(int(low), int(high), log=log, step=int(step_abs))
    if log:
        raise ValueError(
            f"parameter {name!r}: tag(log, range(...)) needs integer bounds and step, got "
            f"range({start}, {stop}, {step}); use tag(log, interval(a, b)) for a log-scaled float."
        )
    return Float(float(low), float(high), step=float(step_abs))


def _choice(name: str, override: Override, space: SearchSpace) -> Parameter:
    sweep = override.value()
    # read the list itself: sweep_iterator() would shuffle a shuffle(...) sweep
    elements = (
        list(sweep.list) if isinstance(sweep, ChoiceSweep) else list(override.sweep_iterator())
    )
    values = [_plain(v) for v in elements]
    if any(isinstance(v, (list, dict)) for v in values):
        # lists / dicts travel as their override text, verbatim
        space.raw.add(name)
        values = [Transformer.str(v) for v in elements]
    if len(values) < 2:
        raise ValueError(
            f"parameter {name!r}: choice of {len(values)} value(s) {values!r}; a sweep needs "
            f"at least two. Write `{name}=<value>` to fix a parameter."
        )
    return Categorical(values)


def _check_tags(name: str, tags: Iterable[str]) -> None:
    unknown = sorted(set(tags) - {"log"})
    if unknown:
        raise ValueError(
            f"parameter {name!r}: unknown tag(s) {unknown!r}; the sweeper understands only 'log'."
        )


def parse_override(override: Override, space: SearchSpace) -> Parameter | None:
    """The parameter of one sweep override, or None for a fixed override.

    Raises:
        ValueError: a degenerate or unsupported sweep (named in the message).
    """
    if not override.is_sweep_override():
        return None
    name = _name(override)
    value = override.value()
    if override.is_interval_sweep():
        return _interval(name, value)
    if override.is_range_sweep():
        return _range(name, value)
    if override.is_choice_sweep():
        if isinstance(value, ChoiceSweep):
            _check_tags(name, value.tags)
        return _choice(name, override, space)
    raise ValueError(f"parameter {name!r}: unsupported sweep {override.input_line!r}.")


def parse_search_space(
    params: Mapping[str, Any] | None,
    arguments: Iterable[str],
    config_loader: Any = None,
) -> SearchSpace:
    """Build the search space from ``hydra.sweeper.params`` and the command line.

    Args:
        params: ``{key: override value}`` from the sweeper config (strings in
            the override grammar, or plain values for fixed parameters).
        arguments: The command-line overrides of the sweep; they win over
            ``params`` for the same key.
        config_loader: Hydra's config loader (needed for ``glob(...)``).

    Returns:
        The ``SearchSpace``.

    Raises:
        ValueError: a degenerate sweep, an unknown tag, or nothing to optimize.
    """
    lines = [f"{k}={_param_text(v)}" for k, v in (params or {}).items()]
    lines += list(arguments)
    parser = OverridesParser.create(config_loader=config_loader)
    by_name: dict[str, Override] = {}
    for override in parser.parse_overrides(lines):
        name = _name(override)
        by_name.pop(name, None)  # keep the latest position and value
        by_name[name] = override
    space = SearchSpace()
    swept: dict[str, Parameter] = {}
    for name, override in by_name.items():
        param = parse_override(override, space)
        if param is None:
            space.fixed.append(override.input_line or "")
        else:
            swept[name] = param
            prefix = override.get_key_element()[: -len(name)] if name else ""
            space.keys[name] = prefix + name
    if not swept:
        raise ValueError(
            "bayesopt sweeper: no parameter to optimize. Give sweeps on the command line "
            "('lr=tag(log, interval(1e-5, 1e-1))', 'layers=range(1, 5)', "
            "'act=choice(relu, tanh)') or in hydra.sweeper.params."
        )
    space.params = {k: swept[k] for k in sorted(swept)}
    return space


def _param_text(value: Any) -> str:
    """An entry of ``hydra.sweeper.params`` as override text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)) or value is None:
        return format_value(value)
    raise TypeError(
        f"hydra.sweeper.params: expected override strings such as 'interval(0, 1)' or "
        f"plain values, got {value!r}."
    )
