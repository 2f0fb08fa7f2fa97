"""``/api/users``: user administration (admins only)."""

from __future__ import annotations

from fastapi import APIRouter

from cxrlab.annotate.deps import AdminUser, AuthFirstRoute, SessionDep
from cxrlab.annotate.schemas import UserIn, UserOut, UserPatch, error, errors
from cxrlab.annotate.services import auth

router = APIRouter(prefix="/api/users", tags=["users"], responses=errors(401, 403), route_class=AuthFirstRoute)


@router.get("", response_model=list[UserOut])
def api_list_users(admin: AdminUser, session: SessionDep) -> list[UserOut]:
    """Every user."""
    return [UserOut.model_validate(u) for u in auth.list_users(session)]


@router.post("", response_model=UserOut, status_code=201, responses=errors(400))
def api_create_user(body: UserIn, admin: AdminUser, session: SessionDep) -> UserOut:
    """Add a user; the reader id (``rad_id``) is given by the server."""
    return UserOut.model_validate(auth.create_user(session, username=body.username, password=body.password,
                                                   role=body.role))


@router.patch("/{username}", response_model=UserOut,
              responses={**errors(404), 409: error(409, "The last active admin cannot be disabled (rule last_admin)")})
def api_patch_user(username: str, body: UserPatch, admin: AdminUser, session: SessionDep) -> UserOut:
    """Disable/enable a user or set a new password (either ends the user's sessions). The last active admin
    cannot be disabled (409)."""
    user = auth.get_user(session, username)
    if body.password is not None:
        user = auth.set_password(session, username=username, password=body.password)
    if body.active is not None:
        user = auth.set_active(session, username=username, active=body.active)
    return UserOut.model_validate(user)
