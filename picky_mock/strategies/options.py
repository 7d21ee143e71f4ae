"""Checks of the options every strategy takes, so that a wrong one fails when the strategy is built.

Each check raises :class:`hypothesis.errors.InvalidArgument` naming the option and what it accepts,
the error Hypothesis's own strategies raise, so a test sees a bad option before the first example.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

__all__ = ["check_bool", "check_choices", "check_range", "check_size", "check_strategy", "composite", "pick"]

T = TypeVar("T")
P = ParamSpec("P")


def composite(function: Callable[Concatenate[st.DrawFn, P], T]) -> Callable[P, st.SearchStrategy[T]]:
    """:func:`hypothesis.strategies.composite`, applied when the strategy is first asked for.

    Hypothesis reads a composite's source when it wraps it (to warn when ``draw`` is unused), a few
    milliseconds per function: deferring it keeps ``import picky_mock.strategies`` cheap.
    """

    @functools.cache
    def wrapped() -> Callable[P, st.SearchStrategy[T]]:
        return st.composite(function)

    @functools.wraps(function)
    def strategy(*args: P.args, **kwargs: P.kwargs) -> st.SearchStrategy[T]:
        return wrapped()(*args, **kwargs)

    return strategy


def pick(draw: st.DrawFn, options: Sequence[T]) -> T:
    """One of ``options``, shrinking toward the first: ``sampled_from`` without building a strategy
    in the middle of a draw (``integers`` strategies are cached, ``sampled_from`` ones are not)."""
    return options[draw(st.integers(0, len(options) - 1))]


def check_size(name: str, value: object, *, low: int) -> int:
    """``value`` as an integer of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}={value!r} must be an integer")
    if value < low:
        raise InvalidArgument(f"{name}={value} must be at least {low}")
    return value


def check_range(min_name: str, min_value: object, max_name: str, max_value: object, *, low: int) -> tuple[int, int]:
    """``(min_value, max_value)``, both at least ``low`` and in order."""
    lo = check_size(min_name, min_value, low=low)
    hi = check_size(max_name, max_value, low=low)
    if lo > hi:
        raise InvalidArgument(f"{min_name}={lo} is greater than {max_name}={hi}")
    return lo, hi


def check_choices(name: str, value: object, allowed: Sequence[T]) -> list[T]:
    """The chosen members of ``allowed``, in its order: a strategy over them shrinks toward the first."""
    if isinstance(value, str) or not isinstance(value, Collection):
        raise InvalidArgument(f"{name}={value!r} must be a collection of {', '.join(map(repr, allowed))}")
    chosen: list[Any] = list(value)
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise InvalidArgument(f"{name}: unknown {unknown!r}; choose among {', '.join(map(repr, allowed))}")
    if not chosen:
        raise InvalidArgument(f"{name} must not be empty")
    return [v for v in allowed if v in chosen]


def check_bool(name: str, value: object) -> bool:
    """``value``, which must be ``True`` or ``False`` (not merely truthy)."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} must be True or False")
    return value


def check_strategy(name: str, value: object, what: str) -> st.SearchStrategy[Any]:
    """``value``, which must be a strategy (``what`` says of what, for the message)."""
    if not isinstance(value, st.SearchStrategy):
        raise InvalidArgument(f"{name}={value!r} must be a strategy of {what}")
    return value
