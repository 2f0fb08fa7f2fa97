"""Users, passwords and sessions of the labeling tool.

Passwords are hashed with Argon2id (argon2-cffi, the reference binding; RFC 9106). A login creates a random
token (``secrets.token_urlsafe(32)``); the catalog keeps only its SHA-256, an expiry and the user, so a stolen
catalog does not yield usable tokens. The same table serves cookie sessions (browser) and bearer tokens (API
clients, the load bench); logout deletes the row. Failed logins cost the same time whether or not the user
exists (a dummy hash is verified), and a user name or client address with too many recent failures is refused
for a while (:class:`LoginLimiter`).

Every change an admin makes (add, disable, enable, new password) is an ``events`` row (stage ``admin``, no image)
with its author: the admin's user name from the web app, ``cli`` from the command line. A password is never in it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from cxrlab.annotate.writes import insert_events, lock_row, transaction
from cxrlab.catalog.db import one_or_not_found
from cxrlab.catalog.models import AuthSession, User, UserRole
from cxrlab.errors import AuthenticationError, ConflictError, CxrlabError, RateLimitedError

__all__ = [
    "LAST_ADMIN_RULE",
    "SESSION_TTL",
    "LoginLimiter",
    "authenticate",
    "create_user",
    "get_user",
    "hash_password",
    "list_users",
    "login",
    "logout",
    "resolve_token",
    "set_active",
    "set_password",
    "verify_password",
]

#: How long a login lasts (a working day plus margin); the user logs in again afterwards.
SESSION_TTL = timedelta(hours=12)
MIN_PASSWORD = 8
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
#: Argon2id with argon2-cffi's defaults needs 64 MiB per hash; at most this many run at once, so a burst of
#: logins cannot take the server's memory (the rest wait their turn).
_HASH_SLOTS = threading.BoundedSemaphore(2)


def hash_password(password: str) -> str:
    """Argon2id hash of *password* (``CxrlabError`` if shorter than :data:`MIN_PASSWORD`)."""
    if len(password) < MIN_PASSWORD:
        raise CxrlabError(f"password must have at least {MIN_PASSWORD} characters")
    with _HASH_SLOTS:
        return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when *password* matches *stored_hash*."""
    try:
        with _HASH_SLOTS:
            return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


# --- users -------------------------------------------------------------------------------------------------


def _event(session: Session, action: str, author: str, user: User) -> None:
    insert_events(session, [{"image_pk": None, "stage": "admin", "action": action, "author": author,
                             "detail": {"username": user.username, "role": user.role.value, "rad_id": user.rad_id}}])


def create_user(
    session: Session, *, username: str, password: str, role: UserRole | str, author: str = "cli"
) -> User:
    """Add a user; an annotator gets the next free reader id (``R1``, ``R2``, ... as the seeds' ``rad_id``).

    *author* (the admin who adds the user) is recorded in a ``user.create`` event.

    Only annotators read images (VinDr-CXR's ``rad_id`` names the radiologist of each read), so admins and
    reviewers get no reader id and never take a number from a reader.

    Raises
    ------
    CxrlabError
        Invalid user name, role or password, or the user name is taken.
    """
    if not _USERNAME.match(username):
        raise CxrlabError(f"invalid user name {username!r}: letters, digits, '.', '_', '-' (at most 64)")
    try:
        role = UserRole(role)
    except ValueError:
        raise CxrlabError(f"unknown role {role!r} (admin, annotator, reviewer or verifier)") from None
    password_hash = hash_password(password)
    with transaction(session):
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise CxrlabError(f"user {username!r} exists already")
        rad_id = None
        if role is UserRole.ANNOTATOR:
            taken = set(session.scalars(select(User.rad_id).where(User.rad_id.is_not(None))))
            n = len(taken) + 1
            while f"R{n}" in taken:
                n += 1
            rad_id = f"R{n}"
        user = User(username=username, password_hash=password_hash, role=role, rad_id=rad_id, active=True)
        session.add(user)
        _event(session, "user.create", author, user)
    return user


def get_user(session: Session, username: str) -> User:
    """The user called *username* (``NotFoundError`` if none)."""
    return one_or_not_found(session, select(User).where(User.username == username), f"user {username!r}")


def list_users(session: Session) -> list[User]:
    """Every user, by id."""
    return list(session.scalars(select(User).order_by(User.id)))


#: The rule that keeps the tool administrable: some active admin always remains.
LAST_ADMIN_RULE = "last_admin"


def _keep_an_admin(session: Session, user: User) -> None:
    """Refuse (``ConflictError``, rule ``last_admin``) to disable *user* if it is the last active admin.

    Nobody could then add users, assign images or re-enable anyone from the web app. Run inside the write
    transaction: the active admins' rows are locked in id order first (PostgreSQL; two admins disabling each
    other wait for one another instead of both seeing the other still active), and :func:`lock_row` takes
    SQLite's write lock, so the count below sees every committed change.
    """
    if user.role is not UserRole.ADMIN or not user.active:
        return
    admins = select(User.id).where(User.role == UserRole.ADMIN, User.active.is_(True))
    session.execute(admins.order_by(User.id).with_for_update())
    lock_row(session, User, user.id)
    others = session.scalar(select(func.count()).select_from(admins.where(User.id != user.id).subquery()))
    if not others:
        raise ConflictError(f"{user.username!r} is the last active admin; enable or add another admin first",
                            rule=LAST_ADMIN_RULE)


def set_active(session: Session, *, username: str, active: bool, author: str = "cli") -> User:
    """Enable or disable a user; disabling also ends every session of the user. A ``user.enable`` or
    ``user.disable`` event names *author*.

    Raises
    ------
    ConflictError
        Disabling the last active admin (``rule="last_admin"``).
    """
    with transaction(session):
        user = get_user(session, username)
        if not active:
            _keep_an_admin(session, user)
        user.active = active
        if not active:
            session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
        _event(session, "user.enable" if active else "user.disable", author, user)
    return user


def set_password(session: Session, *, username: str, password: str, author: str = "cli") -> User:
    """Replace a user's password and end the user's sessions; a ``user.password`` event names *author* (never
    the password)."""
    password_hash = hash_password(password)
    with transaction(session):
        user = get_user(session, username)
        user.password_hash = password_hash
        session.execute(delete(AuthSession).where(AuthSession.user_id == user.id))
        _event(session, "user.password", author, user)
    return user


# --- sessions ----------------------------------------------------------------------------------------------


class LoginLimiter:
    """Refuse logins for a key (user name, client address) after *limit* failures within *window* seconds.

    In-process memory: enough for one server process; several workers each keep their own count.
    """

    def __init__(self, limit: int = 10, window: float = 300.0) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, *keys: str) -> None:
        """Raise :class:`RateLimitedError` if any key is over the limit."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                q = self._failures.get(key)
                while q and now - q[0] > self.window:
                    q.popleft()
                if q and len(q) >= self.limit:
                    raise RateLimitedError()

    def fail(self, *keys: str) -> None:
        """Count a failure for each key."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def reset(self, *keys: str) -> None:
        """Forget the failures of each key (after a successful login)."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def authenticate(session: Session, *, username: str, password: str) -> User:
    """The active user with this name and password, else ``AuthenticationError`` (same cost either way)."""
    user = session.scalar(select(User).where(User.username == username))
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not ok or not user.active:
        raise AuthenticationError("wrong user name or password")
    return user


def login(
    session: Session,
    *,
    username: str,
    password: str,
    kind: str = "cookie",
    limiter: LoginLimiter | None = None,
    client: str = "",
    ttl: timedelta = SESSION_TTL,
) -> tuple[User, str, datetime]:
    """Check the password and open a session; return ``(user, token, expires_at)``.

    Expired sessions of every user are purged on the way (a cheap indexed delete).
    """
    keys = (f"user:{username.lower()}", f"addr:{client}")
    if limiter:
        limiter.check(*keys)
    try:
        user = authenticate(session, username=username, password=password)
    except AuthenticationError:
        if limiter:
            limiter.fail(*keys)
        raise
    if limiter:
        limiter.reset(keys[0])
    token = secrets.token_urlsafe(32)
    expires = _now() + ttl
    with transaction(session):
        session.execute(delete(AuthSession).where(AuthSession.expires_at < _now()))
        session.add(AuthSession(token_hash=_token_hash(token), user_id=user.id, kind=kind, expires_at=expires))
    return user, token, expires


#: Every request runs this lookup: built once, so SQLAlchemy neither rebuilds the statement nor its cache key.
_SESSION_USER = (
    select(AuthSession.expires_at, User)
    .join(User, User.id == AuthSession.user_id)
    .where(AuthSession.token_hash == bindparam("token_hash"))
)


def resolve_token(session: Session, token: str) -> User:
    """The active user of an unexpired session *token*, else ``AuthenticationError``.

    The session row is read on every request (no cache), so a logout, a disabled user or a session ended
    directly in the catalog takes effect at once, in every server process.
    """
    row = session.execute(_SESSION_USER, {"token_hash": _token_hash(token)}).first()
    if row is None:
        raise AuthenticationError("session unknown or logged out")
    expires_at, user = row
    if expires_at <= _now():
        raise AuthenticationError("session expired; log in again")
    if not user.active:
        raise AuthenticationError("user disabled")
    return user


def logout(session: Session, token: str) -> None:
    """Delete the session of *token* (a no-op if it is already gone)."""
    with transaction(session):
        session.execute(delete(AuthSession).where(AuthSession.token_hash == _token_hash(token)))
