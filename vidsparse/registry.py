"""One small registry type shared by models, updaters, distributions and corruptions."""

from __future__ import annotations

from typing import Any, Callable, Iterator


class Registry:
    """A name -> object table that fails loudly.

    Registering a name twice raises; asking for an unknown name raises a ``KeyError``
    that lists the known names, so a typo in a config is one read away from its fix.

    Example:
        >>> UPDATERS = Registry("updater")
        >>> @UPDATERS.register("set")
        ... class SET: ...
        >>> UPDATERS.get("set")
        <class '...SET'>
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str | None = None, **meta: Any) -> Callable[[Any], Any]:
        def decorator(obj: Any) -> Any:
            key = name or obj.__name__
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._items[key] = obj
            self._meta[key] = dict(meta)
            return obj

        return decorator

    def get(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def meta(self, name: str) -> dict[str, Any]:
        self.get(name)
        return dict(self._meta[name])

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
