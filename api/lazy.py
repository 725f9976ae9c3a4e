"""Package names imported on first use (PEP 562), so that importing a package (the command line imports
`sscn` and `sscn.models` for their constants) does not load torch until a name that needs it is used."""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, homes: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose public names live in `homes` (name -> module, relative
    to the package when it starts with a dot); its submodules are attributes too, as if imported eagerly."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        if name in homes:
            value = getattr(importlib.import_module(homes[name], package), name)
        elif importlib.util.find_spec(f"{package}.{name}") is not None:      # a submodule, as `sscn.images`
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value          # later lookups find it without this function
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *homes})

    return __getattr__, __dir__
