"""``twin users``, ``twin case share`` and ``twin hearing create``: who may see what (:mod:`twin.access`).

A generated password or token is printed once, on stdout, and kept only hashed.
"""

from __future__ import annotations

import json
from typing import Any

import click

from twin.access import ROLES


def _access(twin_dir: str) -> Any:
    from twin.access import Access

    return Access.open(twin_dir)


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


@click.group()
def users() -> None:
    """Users, roles and API tokens."""


@users.command("add")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--jurisdiction", "jurisdictions", multiple=True, help="Unit code an investigator works in (repeat).")
@click.option("--station", "stations", multiple=True, help="Station id a station account posts for (repeat).")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Read the password from this file (default: generate one and print it once).",
)
@click.option("--token", "with_token", is_flag=True, help="Also make an API token and print it once.")
def add(
    twin_dir: str,
    name: str,
    role: str,
    jurisdictions: tuple[str, ...],
    stations: tuple[str, ...],
    password_file: str | None,
    with_token: bool,
) -> None:
    """Add a user; prints the user, its password (if generated) and token (with --token), once."""
    import secrets

    access = _access(twin_dir)
    generated = None
    if password_file is not None:
        with open(password_file, encoding="utf-8") as fh:
            password = fh.read().strip()
    elif role == "station":
        password = None  # stations post with a token, they never log in
    else:
        password = generated = secrets.token_urlsafe(12)
    user = access.add_user(name, role, jurisdictions=jurisdictions, stations=stations, password=password)
    out: dict[str, Any] = user.to_json()
    if generated is not None:
        out["password"] = generated
    if with_token or role == "station":
        out["token"] = access.new_token(name)
    _echo(out)


@users.command("token")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("name")
def token(twin_dir: str, name: str) -> None:
    """Make a new API token for a user; prints it once (send it as `Authorization: Bearer TOKEN`)."""
    _echo({"name": name, "token": _access(twin_dir).new_token(name)})


@users.command("password")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("name")
@click.option("--password-file", type=click.Path(dir_okay=False, exists=True), default=None)
def password(twin_dir: str, name: str, password_file: str | None) -> None:
    """Set a user's password (from a file, or generated and printed once)."""
    import secrets

    if password_file is not None:
        with open(password_file, encoding="utf-8") as fh:
            new, shown = fh.read().strip(), None
    else:
        new = shown = secrets.token_urlsafe(12)
    _access(twin_dir).set_password(name, new)
    _echo({"name": name} | ({"password": shown} if shown else {}))


@users.command("list")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
def list_(twin_dir: str) -> None:
    """The users, one JSON object per line (no secrets)."""
    for user in _access(twin_dir).users():
        _echo(user.to_json())


@click.group()
def case() -> None:
    """Cases across jurisdictions."""


@case.command("share")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--case", "case_id", required=True)
@click.option("--with", "with_", required=True, help="The unit code to share the case with, e.g. 30.")
@click.option("--by", required=True, help="The user who shares it (must see the case); logged.")
def share(twin_dir: str, case_id: str, with_: str, by: str) -> None:
    """Share a case with another jurisdiction's investigators; the act is logged in the evidence log."""
    _echo(_access(twin_dir).share_case(case_id, with_, by=by))


@click.group()
def hearing() -> None:
    """Hearings: a case's bundle shown to a judge through a signed, expiring link."""


@hearing.command("create")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--case", "case_id", required=True)
@click.option("--judge", required=True, help="The judge (a user with role judge).")
@click.option("--hours", type=float, default=48.0, show_default=True, help="How long the link works.")
@click.option("--by", default=None, help="Who makes the hearing bundle (logged; default: the OS user).")
@click.option("--agency", default=None, help="Whose key signs the bundle's head.")
@click.option("--base-url", default="http://127.0.0.1:8000/", show_default=True, help="Where the twin is served.")
@click.option("--no-overlays", is_flag=True, help="Leave out the rendered map and 3D view.")
def create(
    twin_dir: str,
    case_id: str,
    judge: str,
    hours: float,
    by: str | None,
    agency: str | None,
    base_url: str,
    no_overlays: bool,
) -> None:
    """Bundle a case for a judge; prints the hearing and its signed link."""
    from twin.evidence.ledger import default_actor

    access = _access(twin_dir)
    click.echo(f"bundling case {case_id} for the hearing...", err=True)
    h = access.create_hearing(
        case_id, judge=judge, hours=hours, by=by or default_actor(), agency=agency, overlays=not no_overlays
    )
    _echo(
        {
            "hearing": h.id,
            "case_id": h.case_id,
            "judge": h.judge,
            "bundle": str(h.bundle_path),
            "bundle_sha256": h.bundle_sha256,
            "expires": h.expires,
            "link": access.link(h, base_url),
        }
    )
