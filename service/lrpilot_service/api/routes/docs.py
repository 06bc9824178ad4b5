"""``/docs``: Swagger UI from the package's own copy (``api/static/vendor/swagger-ui``), never a CDN.

FastAPI's built-in page loads swagger-ui from jsdelivr, which leaves ``/docs`` blank offline; the
app turns that off (``docs_url=None``) and this router serves the same page with local assets. The
app mounts it, and the schema at :data:`OPENAPI_URL`, behind the token when auth is required.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
ASSETS = "/static/vendor/swagger-ui"
OPENAPI_URL = "/openapi.json"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{request.app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
    )
