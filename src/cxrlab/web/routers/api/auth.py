"""``/api/auth``: log in (cookie session or bearer token), log out, who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cxrlab.annotate import users
from cxrlab.web.deps import COOKIE_NAME, CSRF_HEADER, AuthFirstRoute, CurrentUser, SessionDep, request_token
from cxrlab.web.models import LoginIn, LoginOut, TokenOut, UserOut, error, errors

router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=AuthFirstRoute)

ERRORS = {401: error(401, "Wrong user name or password"), 429: error(429, "Too many failed logins")}


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


@router.post("/login", response_model=LoginOut, responses=ERRORS)
def api_login(body: LoginIn, request: Request, response: Response, session: SessionDep) -> LoginOut:
    """Log in for the browser: sets the ``cxrlab_session`` cookie (HttpOnly, SameSite=Strict)."""
    user, token, expires = users.login(session, username=body.username, password=body.password, kind="cookie",
                                      limiter=request.app.state.login_limiter, client=_client(request))
    response.set_cookie(COOKIE_NAME, token, httponly=True, samesite="strict", secure=request.app.state.secure_cookies,
                        max_age=int(users.SESSION_TTL.total_seconds()), path="/")
    return LoginOut(user=UserOut.model_validate(user), expires_at=expires, csrf_header=CSRF_HEADER)


@router.post("/token", response_model=TokenOut, responses=ERRORS)
def api_token(body: LoginIn, request: Request, session: SessionDep) -> TokenOut:
    """Log in for an API client: returns a bearer token (``Authorization: Bearer <token>``)."""
    user, token, expires = users.login(session, username=body.username, password=body.password, kind="bearer",
                                      limiter=request.app.state.login_limiter, client=_client(request))
    return TokenOut(access_token=token, expires_at=expires, user=UserOut.model_validate(user))


@router.post("/logout", status_code=204, responses=errors(401, 403))
def api_logout(user: CurrentUser, request: Request, session: SessionDep) -> Response:
    """End this session (cookie or token): the token stops working at once."""
    found = request_token(request)
    if found:
        users.logout(session, found[0])
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.get("/me", response_model=UserOut, responses=errors(401))
def api_me(user: CurrentUser) -> UserOut:
    """The logged-in user."""
    return UserOut.model_validate(user)
