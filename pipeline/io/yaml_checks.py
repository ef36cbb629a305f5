"""YAML read from users' files (run configs, runner profiles, recipes): the alias checks both need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_YAML_VALUES = 100_000  # a run config holds about 50 values, a recipe a few hundred


def yaml_alias_problem(data: Any, limit: int = MAX_YAML_VALUES) -> str | None:
    """What is wrong with YAML aliases in ``data``, or None. PyYAML shares an aliased value instead of
    copying it, so ``&a [*a]`` is a list that contains itself (walking it recurses forever) and a few
    hundred bytes of nested aliases can stand for billions of values (printing or copying them exhausts
    memory). Counted without recursion, each shared value once."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        if isinstance(node, Mapping):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        key = id(node)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes.get(id(child), 1) for child in children)
            if sizes[key] > limit:
                return f"YAML aliases expand to more than {limit} values"
        elif key in open_:
            return "a YAML alias refers to a value that contains it (e.g. &a [*a])"
        elif key not in sizes:
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return None
