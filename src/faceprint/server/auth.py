"""API-key authentication: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; two roles.

Routes declare the role they need with :data:`ReadKey` or :data:`AdminKey` (or a router, for all
its routes, with ``dependencies=[Depends(RequireRole(...))]``). The service's
GuardMiddleware reads that declaration (:func:`route_role`) and checks the key before a byte of
the body is read, so an anonymous upload costs the server nothing; the dependency then reuses
the key it found, and checks on its own where no guard ran.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from faceprint.server.store import ApiKey, Role, ServerStore

# auto_error=False: we answer missing keys ourselves, with our JSON error shape; declaring the
# schemes still puts them in the OpenAPI document (the "Authorize" button of /docs)
bearer_scheme = HTTPBearer(auto_error=False, description="An API key from `faceprint keys create`.")
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, in its own header.")

#: what each role may do: admin can do everything read can
_GRANTS: dict[Role, set[Role]] = {"admin": {"admin", "read"}, "read": {"read"}}
#: where the guard leaves the key it checked, in the request's scope["state"]
STATE_KEY = "api_key"


class AuthError(HTTPException):
    def __init__(self, status: int, code: str, message: str) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        super().__init__(status_code=status, detail={"code": code, "message": message}, headers=headers)


def presented_secret(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: X-API-Key, else an ``Authorization: Bearer`` credential."""
    header = (headers.get("x-api-key") or "").strip()
    if header:
        return header
    scheme, _, credentials = (headers.get("authorization") or "").strip().partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def authenticate(store: ServerStore, headers: Mapping[str, str], role: Role) -> ApiKey:
    """The active key of a request allowed ``role``; AuthError 401 (no or bad key) or 403 (role)."""
    secret = presented_secret(headers)
    if not secret:
        raise AuthError(401, "unauthorized", "an API key is required (Authorization: Bearer KEY or X-API-Key)")
    key = store.authenticate(secret)
    if key is None:
        raise AuthError(401, "unauthorized", "invalid or revoked API key")
    return authorize(key, role)


def authorize(key: ApiKey, role: Role) -> ApiKey:
    if role not in _GRANTS.get(key.role, set()):
        raise AuthError(403, "forbidden", f"this needs a key with the {role!r} role; this key is {key.role!r}")
    return key


class RequireRole:
    """A dependency that admits a request carrying an active key with ``role`` (or a higher one)."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.__name__ = f"require_{role}"

    def __call__(
        self,
        request: Request,
        # declared for the OpenAPI document; the headers themselves are read by authenticate()
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        _header: Annotated[str | None, Depends(header_scheme)],
    ) -> ApiKey:
        checked = request.scope.get("state", {}).get(STATE_KEY)
        if isinstance(checked, ApiKey):
            key = authorize(checked, self.role)
        else:
            key = authenticate(request.app.state.store, request.headers, self.role)
        request.state.api_key = key
        return key


def route_role(dependant: Dependant | None) -> Role | None:
    """The strongest role a route's dependencies require (None: the route needs no key)."""
    found: Role | None = None
    for dep in dependant.dependencies if dependant is not None else ():
        role = dep.call.role if isinstance(dep.call, RequireRole) else route_role(dep)
        if role == "admin":
            return role
        found = found or role
    return found


def guard_request(store: ServerStore, headers: Mapping[str, str], scope: MutableMapping[str, Any], role: Role) -> None:
    """The guard's check (before the body is read): raises AuthError, or leaves the key for the route."""
    scope.setdefault("state", {})[STATE_KEY] = authenticate(store, headers, role)


ReadKey = Annotated[ApiKey, Depends(RequireRole("read"))]
AdminKey = Annotated[ApiKey, Depends(RequireRole("admin"))]
