"""The one rule for identity names, used by the gallery and so by every front end.

A name is trimmed and put in Unicode NFC form, then must be 1-200 characters, hold no control
or line-separator character, no ``/`` or ``\\`` (names travel in URL paths and become folder
names in exports), no ``<`` or ``>``, and must not be ``.`` or ``..``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from faceprint.errors import InvalidNameError

MAX_NAME_LENGTH = 200
FORBIDDEN = frozenset("/\\<>")
RULE = f"1-{MAX_NAME_LENGTH} characters, no control characters, none of / \\ < >, and not '.' or '..'"


def shown(name: str, limit: int = 40) -> str:
    """A name as quoted in messages: repr, cut to ``limit`` characters (never echo 10 kB back)."""
    return repr(name) if len(name) <= limit else repr(name[:limit]) + f"... ({len(name):,} characters)"


def normalize_name(name: str) -> str:
    """How a name is stored and looked up: trimmed, NFC."""
    return unicodedata.normalize("NFC", name).strip()


def validate_name(name: str) -> str:
    """The normalised name, or :class:`InvalidNameError` saying which part of the rule it breaks."""
    if not isinstance(name, str):
        raise InvalidNameError(f"identity name must be text, not {type(name).__name__}")
    clean = normalize_name(name)
    problem = None
    if not clean:
        problem = "it is empty"
    elif len(clean) > MAX_NAME_LENGTH:
        problem = f"it is longer than {MAX_NAME_LENGTH} characters"
    elif clean in (".", ".."):
        problem = "'.' and '..' are not names"
    elif any(c in FORBIDDEN for c in clean):
        problem = "it contains / \\ < or >"
    elif any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in clean):
        problem = "it contains a control character"
    if problem:
        raise InvalidNameError(f"invalid identity name {shown(name)}: {problem} (names are {RULE})")
    return clean


_PREFIX = re.compile(r"^\d+[_\-. ]+(?=\D)")  # "0008_jessica" (a numbered gallery)
_SUFFIX = re.compile(r"(?:[_\-. ]+\d+|\s*\(\d+\))$")  # "biden_2", "biden-02", "biden (3)"


def name_from_filename(path: str | os.PathLike[str]) -> str:
    """The person a file is named after, face_recognition's flat-folder layout: the file name
    without its extension, a leading number (``0008_jessica.png``) or a trailing photo number
    (``biden_2.png``, ``biden-02.jpg``, ``biden (3).jpg``). ``obama.jpg`` -> ``obama``. A name
    that is only a number stays as it is."""
    stem = Path(path).stem
    name = _SUFFIX.sub("", _PREFIX.sub("", stem))
    return name if name.strip() else stem
