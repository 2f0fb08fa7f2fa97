"""``/api/users``: user administration (admins only)."""

from __future__ import annotations

from fastapi import APIRouter

from cxrlab.annotate import users
from cxrlab.web.deps import AdminUser, AuthFirstRoute, SessionDep
from cxrlab.web.models import UserIn, UserOut, UserPatch, error, errors

router = APIRouter(prefix="/api/users", tags=["users"], responses=errors(401, 403), route_class=AuthFirstRoute)


@router.get("", response_model=list[UserOut])
def api_list_users(admin: AdminUser, session: SessionDep) -> list[UserOut]:
    """Every user."""
    return [UserOut.model_validate(u) for u in users.list_users(session)]


@router.post("", response_model=UserOut, status_code=201, responses=errors(400))
def api_create_user(body: UserIn, admin: AdminUser, session: SessionDep) -> UserOut:
    """Add a user; the reader id (``rad_id``) is given by the server."""
    return UserOut.model_validate(users.create_user(session, username=body.username, password=body.password,
                                                   role=body.role, author=admin.username))


@router.patch("/{username}", response_model=UserOut,
              responses={**errors(404), 409: error(409, "The last active admin cannot be disabled (rule last_admin)")})
def api_patch_user(username: str, body: UserPatch, admin: AdminUser, session: SessionDep) -> UserOut:
    """Disable/enable a user or set a new password (either ends the user's sessions). The last active admin
    cannot be disabled (409)."""
    user = users.get_user(session, username)
    if body.password is not None:
        user = users.set_password(session, username=username, password=body.password, author=admin.username)
    if body.active is not None:
        user = users.set_active(session, username=username, active=body.active, author=admin.username)
    return UserOut.model_validate(user)
