"""Where an operator's configuration file is: the one rule the backends, roles and API tokens files share."""

from __future__ import annotations

import os
from pathlib import Path


def operator_file(env: str, default: Path) -> Path | None:
    """$`env` when set (a missing file it names is the caller's error to report), else `default` when it exists,
    else None: no such configuration.

    >>> operator_file("PARACITE_NO_SUCH_VARIABLE", Path("no/such/file.toml")) is None
    True
    """
    named = os.environ.get(env)
    if named:
        return Path(named)
    return default if default.is_file() else None
