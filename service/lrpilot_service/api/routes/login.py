"""``/login`` and ``/logout``: a browser's way to carry a token (it cannot set Authorization on a link).

The form takes a token and, if it is valid, stores it in an HttpOnly, SameSite=Strict cookie (Secure
over HTTPS), which ``authenticated_caller`` accepts like a bearer header: pages such as the dashboard
and ``/docs`` are then protected by the same dependency as the API. Strict same-site rules keep
other sites from riding the cookie (no CSRF on the POST routes).
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lrpilot_service.api.deps import SESSION_COOKIE
from lrpilot_service.api.ratelimit import RateLimiter
from lrpilot_service.store import AuthenticationFailed, JobRepository

router = APIRouter(include_in_schema=False)
SESSION_MAX_AGE_S = 12 * 3600

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lrpilot: sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
input{{width:100%;padding:.5rem;margin:.5rem 0;box-sizing:border-box}}.error{{color:#b00020}}</style></head>
<body><h1>lrpilot</h1><p>Sign in with an lrpilot token (<code>lrpilot tokens create --tenant T</code>).</p>
{error}<form method="post" action="/login">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="off" required autofocus>
<input type="hidden" name="next" value="{next}"><input type="submit" value="Sign in"></form></body></html>
"""


def _safe_next(target: str) -> str:
    """Only a path on this site: ``//evil.example`` or ``https://...`` would be an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _page(next_path: str, error: str = "", status_code: int = 200) -> HTMLResponse:
    shown = f'<p class="error">{html.escape(error)}</p>' if error else ""
    body = _PAGE.format(error=shown, next=html.escape(_safe_next(next_path), quote=True))
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


@router.get("/login")
def login_form(next: str = "/") -> HTMLResponse:
    return _page(next)


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token, next_path = form.get("token", [""])[0].strip(), form.get("next", ["/"])[0]
    limiter: RateLimiter = request.app.state.rate_limiter
    limiter.check(("login", request.client.host if request.client else ""))
    try:
        repository: JobRepository = request.app.state.repository
        await run_in_threadpool(repository.access.authenticate, token)
    except AuthenticationFailed as error:
        return _page(next_path, str(error), status_code=401)
    response = RedirectResponse(_safe_next(next_path), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
