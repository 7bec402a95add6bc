"""``/docs``: Swagger UI 5, which renders the service's OpenAPI 3.1 document, from the files of the
``fastapi-swagger`` package (served here, so the page works offline and loads nothing from a CDN).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

#: Swagger UI's distribution files, as the fastapi-swagger package ships them
ASSETS = Path(str(files("fastapi_swagger") / "resources"))
ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}

router = APIRouter(include_in_schema=False)


def _inline_script_hashes(html: str) -> str:
    """CSP sources for the page's own inline scripts (the Swagger UI start-up code), by hash."""
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url or "/openapi.json",
        title=f"{request.app.title} API",
        swagger_js_url="/docs-assets/swagger-ui-bundle.js",
        swagger_css_url="/docs-assets/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
        # no badge that sends the schema to the public validator
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode()
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {_inline_script_hashes(html)}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
    )
    return page


@router.get("/docs-assets/{name}")
def docs_asset(name: str) -> FileResponse:
    if name not in ASSET_TYPES:
        raise HTTPException(404)
    return FileResponse(ASSETS / name, media_type=ASSET_TYPES[name], headers={"Cache-Control": "public, max-age=86400"})
