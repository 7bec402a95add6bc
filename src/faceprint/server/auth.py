"""API-key authentication: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; two roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from faceprint.server.store import ApiKey, Role, ServerStore

# auto_error=False: we answer missing keys ourselves, with our JSON error shape; declaring the
# schemes still puts them in the OpenAPI document (the "Authorize" button of /docs)
bearer_scheme = HTTPBearer(auto_error=False, description="An API key from `faceprint keys create`.")
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, in its own header.")

#: what each role may do: admin can do everything read can
_GRANTS: dict[Role, set[Role]] = {"admin": {"admin", "read"}, "read": {"read"}}


class AuthError(HTTPException):
    def __init__(self, status: int, code: str, message: str) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        super().__init__(status_code=status, detail={"code": code, "message": message}, headers=headers)


def require(role: Role) -> Callable[..., ApiKey]:
    """A dependency that admits a request carrying an active key with ``role`` (or a higher one)."""

    def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        header: Annotated[str | None, Depends(header_scheme)],
    ) -> ApiKey:
        store: ServerStore = request.app.state.store
        secret = header or (bearer.credentials if bearer is not None else None)
        if not secret:
            raise AuthError(401, "unauthorized", "an API key is required (Authorization: Bearer KEY or X-API-Key)")
        key = store.authenticate(secret.strip())
        if key is None:
            raise AuthError(401, "unauthorized", "invalid or revoked API key")
        if role not in _GRANTS.get(key.role, set()):
            raise AuthError(403, "forbidden", f"this needs a key with the {role!r} role; this key is {key.role!r}")
        request.state.api_key = key
        return key

    dependency.__name__ = f"require_{role}"
    return dependency


ReadKey = Annotated[ApiKey, Depends(require("read"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
