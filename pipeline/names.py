"""Names that become part of a path: one rule each, checked before the path is built.

A target's or a source's name becomes a file or folder name (``models/<target>/``,
``configs/sources/<source>.yaml``, ``registry-<target>``, ``<target>.html``) and a column
prefix; a registered model's name, alias or version becomes a download folder. Names read from
``params.yaml``, a CLI option, a model URI, a registry or a model's ``features.json`` are
checked here first, so that ``../../x``, an absolute path, an empty name, a NUL byte or a
thousand characters are one clear line, never a file written somewhere else.

MLflow-free and pure: the caller says which error a bad name is (a config, a model or a
tracking error).
"""

from __future__ import annotations

import re

from pipeline.errors import ConfigError, PipelineError

#: A target or a source: lower-case letters, digits and ``_``, starting with a letter, 1-40
#: characters (also a column prefix and a Python-friendly key).
NAME = r"^[a-z][a-z0-9_]{0,39}$"
#: A registered model's name, alias or version: letters, digits, ``_``, ``-`` and ``.``, not
#: starting with ``.`` (so never ``..``), 1-100 characters.
REGISTRY_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$"

_RULES = {
    NAME: "lower-case letters, digits and _, starting with a letter, at most 40 characters",
    REGISTRY_NAME: "letters, digits, _, - and ., not starting with ., at most 100 characters",
}
_SHOWN = 60  # characters of a refused name shown in the message


def checked(
    value: object,
    what: str,
    pattern: str = NAME,
    error: type[PipelineError] = ConfigError,
) -> str:
    """Return ``value`` when it is a string matching ``pattern``; else raise ``error``.

    ``what`` says where the name came from (``"--name"``, ``"models:/... registry name"``);
    the message shows the name escaped (a NUL or a newline stays on the one line) and cut.
    """
    if isinstance(value, str) and re.fullmatch(pattern, value):
        return value
    shown = repr(value) if not isinstance(value, str) else repr(value[:_SHOWN])
    more = (
        f" (+{len(value) - _SHOWN} characters)"
        if isinstance(value, str) and len(value) > _SHOWN
        else ""
    )
    raise error(f"{what} {shown}{more}: not a valid name ({_RULES.get(pattern, pattern)})")
