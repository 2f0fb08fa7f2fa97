"""``cxrlab users add|list|disable|enable|password``: accounts of the labeling tool."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cxrlab.cli.common import WorkspaceOpt, cli_errors, out

app = typer.Typer(help="Users of the labeling tool (admin, annotator, reviewer, verifier).", no_args_is_help=True)


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="admin, annotator, reviewer or verifier.")] = "annotator",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Add a user (asks for the password; an annotator gets the next reader id rad_id: R1, R2, ...)."""
    from cxrlab.annotate.users import create_user
    from cxrlab.catalog import open_workspace

    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            user = create_user(session, username=username, password=_password(password_stdin), role=role)
    out.print(f"added {user.username} ({user.role.value}" + (f", reader id {user.rad_id})" if user.rad_id else ")"))


@app.command("list")
def list_(workspace: WorkspaceOpt = None) -> None:
    """List users."""
    from rich.table import Table

    from cxrlab.annotate.users import list_users
    from cxrlab.catalog import open_workspace

    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            users = list_users(session)
    table = Table("user", "role", "rad_id", "active", title="users", title_justify="left")
    for u in users:
        table.add_row(u.username, u.role.value, u.rad_id or "-", "yes" if u.active else "no")
    out.print(table)


def _set_active(username: str, active: bool, workspace) -> None:  # noqa: ANN001 - Path | None
    from cxrlab.annotate.users import set_active
    from cxrlab.catalog import open_workspace

    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            set_active(session, username=username, active=active)
    out.print(f"{username} {'enabled' if active else 'disabled (sessions ended)'}")


@app.command("disable")
def disable(username: Annotated[str, typer.Argument()], workspace: WorkspaceOpt = None) -> None:
    """Disable a user: logins refused, open sessions ended, tasks kept."""
    _set_active(username, False, workspace)


@app.command("enable")
def enable(username: Annotated[str, typer.Argument()], workspace: WorkspaceOpt = None) -> None:
    """Enable a disabled user again."""
    _set_active(username, True, workspace)


@app.command("password")
def password(
    username: Annotated[str, typer.Argument()],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Set a new password for a user (asks for it); the user's sessions end."""
    from cxrlab.annotate.users import set_password
    from cxrlab.catalog import open_workspace

    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            set_password(session, username=username, password=_password(password_stdin))
    out.print(f"new password set for {username} (sessions ended)")
