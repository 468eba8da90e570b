"""canaryd's version, read once from where it is written: the package metadata (``pyproject.toml``).

Every place that shows it (``canaryd --version``, the ``flagger_info`` metric, the User-Agent of API
requests) asks here, so a release changes one line of ``pyproject.toml`` and nothing else.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

UNKNOWN = "0+unknown"


def version() -> str:
    """The installed package's version; in a checkout that was never installed, the version
    ``pyproject.toml`` beside the package declares; ``0+unknown`` when neither can be read."""
    try:
        return metadata.version("canaryd")
    except metadata.PackageNotFoundError:
        return checkout_version(Path(__file__).resolve().parent.parent / "pyproject.toml")


def checkout_version(pyproject: Path) -> str:
    """``project.version`` of a ``pyproject.toml`` (``0+unknown`` when missing or unreadable)."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return UNKNOWN
    project = data.get("project")
    declared = project.get("version") if isinstance(project, dict) else None
    return declared if isinstance(declared, str) and declared else UNKNOWN


def user_agent(program: str = "canaryd") -> str:
    """``<program>/<version>``: the User-Agent of API requests, as the API server's audit log shows it."""
    return f"{program}/{version()}"
