"""The test users: one password and one set of names and roles, as the demo names its users (``reader1``...).

The web API fixtures, the browser tests and the benchmarks create these; a test that needs a user of its own
(a second admin, a researcher) gives it :data:`PASSWORD` too.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.orm import Session

from cxrlab.annotate.users import create_user

__all__ = ["PASSWORD", "READERS", "REVIEWERS", "USERS", "create_users"]

PASSWORD = "correct horse battery"
#: User name -> role. ``reader4`` is an annotator with no task in the fixtures' projects.
USERS = {"admin": "admin", "reader1": "annotator", "reader2": "annotator", "reader3": "annotator",
         "reader4": "annotator", "reviewer1": "reviewer", "reviewer2": "reviewer"}
#: The three readers and two reviewers the fixtures assign projects to.
READERS = ["reader1", "reader2", "reader3"]
REVIEWERS = ["reviewer1", "reviewer2"]


def create_users(session: Session, users: Mapping[str, str] = USERS) -> None:
    """Add *users* (name -> role), each with :data:`PASSWORD`."""
    for name, role in users.items():
        create_user(session, username=name, password=PASSWORD, role=role)
