"""Where a gallery lives: a file path (SQLite) or a ``scheme://`` URL (a database server). Kept free of
any database driver, so that telling them apart never needs one installed."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

#: URL schemes of the PostgreSQL store.
POSTGRES_SCHEMES = ("postgresql", "postgres")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(location: str) -> str | None:
    """The scheme of a ``scheme://...`` location, lower case, or None for anything else (a path)."""
    match = _SCHEME.match(location)
    return match.group(1).lower() if match else None


def shown_url(url: str) -> str:
    """The URL as messages show it: without a password (in the user part or a ``password=`` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        netloc = f"{credentials.split(':', 1)[0]}@{host}"
    query = "&".join("password=***" if p.lower().startswith("password=") else p for p in parts.query.split("&") if p)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
