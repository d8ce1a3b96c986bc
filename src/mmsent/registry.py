"""A name → entry table that each entry fills where it is defined (model families, baselines,
encoders), so adding one touches its own module only; an unknown name fails listing the known ones."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")


class Registry(dict):
    """``REG.register(name, **traits)`` above a class (or ``REG.add(name, entry)``) files it by name;
    ``REG[name]`` raises a ``KeyError`` that names the registry and what it holds."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def __missing__(self, name: str) -> Any:
        raise KeyError(f"unknown {self.kind} {name!r}; known: {sorted(self)}")

    def add(self, name: str, entry: T) -> T:
        # a spawned worker re-imports a plugin module: the same name filed again replaces the entry
        self[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            self.add(name, entry)
            return entry
        return add
