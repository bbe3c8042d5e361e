"""Who may do what: users and roles, hashed API tokens, cases shared across jurisdictions, hearings.

Roles (:data:`ROLES`) and what each may do (:data:`POLICY`) are one table; :func:`can`
is the only place that reads it::

    ============  ===========================================================================
    role          may
    ============  ===========================================================================
    admin         everything
    investigator  the model and readings; incidents, warnings and evidence of their
                  jurisdictions and of the cases shared with them; share those cases
    researcher    the model and readings (no incidents, warnings or case files)
    judge         the hearings given to them, nothing else
    station       post readings for its own station(s), nothing else
    ============  ===========================================================================

What an investigator sees is scoped, by one rule (:class:`Scope`, which every web view
asks): a warning by its station's units (every level's code); a case by the union of the
units its evidence was acquired in (the codes in each custody record's
``place.jurisdiction``) and of the units its incidents touch, or because it was shared with
one of their units (:meth:`Access.share_case`, an explicit act logged as a leaf of the
evidence Merkle log); an incident with a case id exactly when its case is (so sharing a
case shares its incidents), one without a case by its own units. A case and its incidents
are therefore always visible together.

Passwords are hashed with :func:`werkzeug.security.generate_password_hash` (scrypt); an
API token is shown once and kept only as its SHA-256. The web secret (session signing,
hearing links, each with a key itsdangerous derives from it with a salt of its own) is
generated at first use into ``<twin>/secrets/web.key`` (folder 0700, file 0600), never
kept in the repository.

>>> from twin.access import Access
>>> access = Access.open("twins/cevennes")                               # doctest: +SKIP
>>> access.add_user("a.martin", "investigator", jurisdictions=["48"])    # doctest: +SKIP
>>> token = access.new_token("a.martin")                                 # doctest: +SKIP
>>> access.share_case("C-1", "30", by="a.martin")                        # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from twin.errors import TwinError
from twin.ops.store import api_tokens, case_shares, evidence_log, hearings, incidents, users

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from twin.evidence import Ledger
    from twin.model.model import Model

log = logging.getLogger(__name__)

ROLES = ("admin", "investigator", "researcher", "judge", "station")

ACTIONS = (
    "model.read",  # terrain, network, jurisdictions, sites, tiles, slices of the model
    "readings.read",  # readings, time slices, station series
    "incidents.read",
    "warnings.read",
    "evidence.read",  # a case's records and files
    "case.share",
    "readings.post",
    "hearing.view",
    "users.manage",
)

#: role -> the actions it may take (admin: all); the one table of the access policy
POLICY: dict[str, frozenset[str]] = {
    "admin": frozenset(ACTIONS),
    "investigator": frozenset(
        {"model.read", "readings.read", "incidents.read", "warnings.read", "evidence.read", "case.share"}
    ),
    "researcher": frozenset({"model.read", "readings.read"}),
    "judge": frozenset({"hearing.view"}),
    "station": frozenset({"readings.post"}),
}

#: actions whose resource is scoped, and by what: jurisdictions (and shared cases), a station, a judge
SCOPED: dict[str, str] = {
    "incidents.read": "jurisdictions",
    "warnings.read": "jurisdictions",
    "evidence.read": "jurisdictions",
    "case.share": "jurisdictions",
    "readings.post": "station",
    "hearing.view": "judge",
}

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
CODE = re.compile(r"\(([^()]+)\)")
TOKEN_PREFIX = "twt_"
_EMPTY: Mapping[str, Any] = {}


class AccessError(TwinError, ValueError):
    """A user, role, share or hearing that cannot be made as asked (the message says why)."""


class UnknownUserError(TwinError, LookupError):
    """No user of that name (or id)."""


class ForbiddenError(TwinError, PermissionError):
    """The user may not do this (HTTP 403)."""


class NotAuthenticatedError(ForbiddenError):
    """No valid credentials (HTTP 401)."""


@dataclass(frozen=True)
class User:
    """A user as the policy sees them: role, units, stations, and the cases shared with their units."""

    id: int
    name: str
    role: str
    jurisdictions: frozenset[str] = frozenset()
    stations: frozenset[str] = frozenset()
    shared_cases: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "jurisdictions": sorted(self.jurisdictions),
            "stations": sorted(self.stations),
            "shared_cases": sorted(self.shared_cases),
        }


@dataclass(frozen=True)
class Resource:
    """What an action is on: the units it lies in, its case, its station, or its hearing's judge."""

    jurisdictions: frozenset[str] = frozenset()
    case_id: str | None = None
    station: str | None = None
    judge_id: int | None = None


@dataclass(frozen=True)
class Hearing:
    id: str
    case_id: str
    bundle_path: Path
    bundle_sha256: str
    judge_id: int
    judge: str
    created: int
    expires: int
    extra: dict[str, Any] = field(default_factory=dict)


def can(user: User | None, action: str, resource: Resource | None = None) -> bool:
    """Whether ``user`` may take ``action`` (on ``resource`` when given): :data:`POLICY`, then :data:`SCOPED`.

    Without a resource the answer is the role's (e.g. may an investigator read incidents
    at all); with one, an investigator must hold one of its units or have its case shared
    with them, a station must be its station, a judge must be the hearing's judge.
    """
    if action not in ACTIONS:
        raise AccessError(f"unknown action {action!r}; allowed: {list(ACTIONS)}")
    if user is None or action not in POLICY.get(user.role, frozenset()):
        return False
    if user.role == "admin" or resource is None or action not in SCOPED:
        return True
    scope = SCOPED[action]
    if scope == "jurisdictions":
        if resource.case_id is not None and resource.case_id in user.shared_cases:
            return True
        return bool(user.jurisdictions & resource.jurisdictions)
    if scope == "station":
        return resource.station is not None and resource.station in user.stations
    return resource.judge_id is not None and resource.judge_id == user.id


def codes_of(units: Any) -> frozenset[str]:
    """Unit codes from an incident's ``{level: [codes]}``, a list of codes, or "Name (code) > ..." text."""
    if units is None:
        return frozenset()
    if isinstance(units, str):
        found = CODE.findall(units)
        return frozenset(found) if found else frozenset({units})
    if isinstance(units, dict):
        return frozenset(str(c) for v in units.values() for c in (v if isinstance(v, list) else [v]) if c)
    return frozenset(str(c) for c in units if c)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- the secret ------------------------------------------------------------------------------------


def secret_key(twin_dir: str | os.PathLike[str]) -> bytes:
    """The twin's web secret (signs sessions and hearing links), generated at first use.

    Kept in ``<twin>/secrets/web.key``: the folder is made 0700 and the file 0600 from the start.
    """
    folder = Path(twin_dir) / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / "web.key"  # the name twins made before the package was renamed keep
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    text = path.read_text().strip()
    if len(text) < 32:
        raise AccessError(f"the web secret '{path}' is too short; delete it and restart to make a new one")
    return bytes.fromhex(text)


#: the salt of hearing links: itsdangerous derives their key from the web secret with it, so a link's
#: signature is of no use for anything else signed with that secret (Flask's sessions have a salt of their own)
LINK_SALT = "twin.access.hearing-link"


class _LinkSigner(TimestampSigner):
    """itsdangerous's timestamped HMAC-SHA256, on a clock that is given.

    A link is stamped with its hearing's creation, so that one hearing and expiry always make
    the same link (the clerk may ask for it again), and a link's age is the hearing's, which
    :func:`check_link` measures at the time of the request against the hearing's life
    (``max_age``: from its creation to its expiry).
    """

    def __init__(self, key: bytes, clock: int):
        super().__init__(key, salt=LINK_SALT, digest_method=hashlib.sha256)
        self.clock = clock

    def get_timestamp(self) -> int:
        return self.clock


def _link_value(hearing: Hearing, expires: int) -> str:
    """What a hearing's link signs: the hearing, its one case and the expiry (``exp`` of the link)."""
    return f"hearing:{hearing.id}:{hearing.case_id}:{int(expires)}"


def sign_link(key: bytes, hearing: Hearing) -> str:
    """The ``sig`` of a hearing's link: the stamp and signature of :class:`_LinkSigner` over its hearing,
    case and expiry, under the twin's secret (the signed text itself is the link's path and ``exp``)."""
    value = _link_value(hearing, hearing.expires)
    signed = _LinkSigner(key, hearing.created).sign(value).decode("ascii")
    return signed.removeprefix(value + ".")


def check_link(key: bytes, hearing: Hearing, exp: str | None, sig: str | None, now: float | None = None) -> None:
    """Accept a hearing link's ``exp`` and ``sig``, or raise :class:`ForbiddenError` saying what is wrong.

    The signature must be of this hearing, its case and that expiry; the expiry must be the
    hearing's (a new one revokes the old links); and the link's age at ``now`` (default: the
    time) must not be past the expiry.
    """
    if not exp or not sig or not exp.isdigit():
        raise NotAuthenticatedError("this hearing needs its signed link (exp and sig); ask the court clerk for it")
    expires = int(exp)
    # a server clock behind the one that made the hearing: not yet expired (a negative age, to itsdangerous)
    clock = max(int(time.time() if now is None else now), hearing.created)
    # itsdangerous refuses an age above max_age: the link is dead from its expiry's second on
    life = expires - hearing.created - 1
    try:
        _LinkSigner(key, clock).unsign(f"{_link_value(hearing, expires)}.{sig}", max_age=life)
        expired = False
    except SignatureExpired:  # the signature is good, and old: says so only if the link is the current one
        expired = True
    except BadSignature:
        raise ForbiddenError("the hearing link's signature does not match; use the link as it was sent") from None
    if expires != hearing.expires:
        raise ForbiddenError("the hearing link is not this hearing's current link")
    if expired:
        raise ForbiddenError(
            f"the hearing link expired at {dt.datetime.fromtimestamp(expires, dt.UTC):%Y-%m-%dT%H:%MZ}; "
            "ask for a new one"
        )


# -- the store -------------------------------------------------------------------------------------


class Access:
    """Users, tokens, shares and hearings of one twin (see the module docstring)."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.engine = ledger.engine
        self.twin_dir = Path(ledger.twin_dir)

    @classmethod
    def open(cls, twin_dir: str | os.PathLike[str], *, engine: sa.Engine | None = None) -> Access:
        from twin.evidence import Ledger

        return cls(Ledger.open(Path(twin_dir), engine=engine))

    # -- users -----------------------------------------------------------------------------------
    def add_user(
        self,
        name: str,
        role: str,
        *,
        jurisdictions: Sequence[str] = (),
        stations: Sequence[str] = (),
        password: str | None = None,
    ) -> User:
        """Add a user. Investigators need at least one unit code, stations at least one station id.

        Raises
        ------
        AccessError
            A bad name or role, a missing scope, or a name already taken.
        """
        if not NAME.fullmatch(name or ""):
            raise AccessError(f"user name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
        if role not in ROLES:
            raise AccessError(f"unknown role {role!r}; allowed: {list(ROLES)}")
        if role == "investigator" and not jurisdictions:
            raise AccessError("an investigator needs at least one jurisdiction code (--jurisdiction 48)")
        if role == "station" and not stations:
            raise AccessError("a station account needs its station id (--station ID)")
        if password is not None:
            _check_password(password)
        row = {
            "name": name,
            "role": role,
            "jurisdictions": json.dumps(sorted(set(jurisdictions))),
            "stations": json.dumps(sorted(set(stations))),
            "password_hash": _hash_password(password) if password is not None else None,
            "created": int(time.time()),
            "disabled": 0,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(users.insert().values(**row))
        except sa.exc.IntegrityError:
            raise AccessError(f"a user named {name!r} exists already") from None
        return self.user(name)

    def set_password(self, name: str, password: str) -> None:
        _check_password(password)
        with self.engine.begin() as conn:
            n = conn.execute(users.update().where(users.c.name == name).values(password_hash=_hash_password(password)))
        if not n.rowcount:
            raise UnknownUserError(f"no user {name!r}; add one with `twin users add DIR {name} --role ROLE`")

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.id)).all()
            return [self._user(conn, r) for r in rows]

    def user(self, name: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
            if row is None:
                raise UnknownUserError(f"no user {name!r}; add one with `twin users add DIR {name} --role ROLE`")
            return self._user(conn, row)

    def user_by_id(self, user_id: int) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.id == user_id, users.c.disabled == 0)).first()
            if row is None:
                raise UnknownUserError(f"no user with id {user_id}")
            return self._user(conn, row)

    def _user(self, conn: sa.Connection, row: Any) -> User:
        units = frozenset(json.loads(row.jurisdictions))
        shared: frozenset[str] = frozenset()
        if units and row.role == "investigator":
            shared = frozenset(
                str(e["case_id"]) for e in log_entries(conn, "access", '"action":"share"') if e.get("with") in units
            )
        return User(int(row.id), row.name, row.role, units, frozenset(json.loads(row.stations)), shared)

    # -- authentication --------------------------------------------------------------------------
    def new_token(self, name: str) -> str:
        """A new API token for the user; returned once, kept only as its SHA-256."""
        user = self.user(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                api_tokens.insert().values(user_id=user.id, token_sha256=token_digest(token), created=int(time.time()))
            )
        return token

    def authenticate_token(self, token: str) -> User:
        """The user of an API token, or :class:`NotAuthenticatedError`."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users)
                .join(api_tokens, api_tokens.c.user_id == users.c.id)
                .where(
                    api_tokens.c.token_sha256 == token_digest(token),
                    api_tokens.c.revoked.is_(None),
                    users.c.disabled == 0,
                )
            ).first()
            if row is None:
                raise NotAuthenticatedError("the API token is not valid; ask an admin for one (`twin users token`)")
            return self._user(conn, row)

    def authenticate_password(self, name: str, password: str) -> User:
        """The user whose name and password these are, or :class:`NotAuthenticatedError` (same message either way)."""
        from werkzeug.security import check_password_hash

        with self.engine.connect() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name, users.c.disabled == 0)).first()
            stored = row.password_hash if row is not None else None
            ok = check_password_hash(stored or _dummy_hash(), password)
            if row is None or not stored or not ok:
                raise NotAuthenticatedError("wrong user name or password")
            return self._user(conn, row)

    # -- cases -----------------------------------------------------------------------------------
    def cases(self) -> list[str]:
        """Every case id the store knows: of evidence records or of incidents."""
        return sorted(case_resources(self.engine))

    def case_scope(self, case_id: str) -> Resource:
        """The case as a resource: the units of its evidence places and of its incidents (:func:`case_resources`).

        Raises
        ------
        UnknownCaseError
            No evidence and no incident has this case id.
        """
        found = case_resources(self.engine, [case_id])
        if case_id not in found:
            raise UnknownCaseError(f"no case {case_id!r}: no evidence and no incident has this case id")
        return found[case_id]

    def scope(self, user: User | None, sites: Any = None, levels: Sequence[str] = ()) -> Scope:
        """What ``user`` may see (:class:`Scope`): cases from this store, warnings by the stations of ``sites``."""
        return Scope(
            user,
            cases=lambda: case_resources(self.engine),
            stations=(lambda: station_units(sites, levels)) if sites is not None else {},
        )

    def share_case(self, case_id: str, jurisdiction: str, *, by: str) -> dict[str, Any]:
        """Share a case with another unit: an explicit act by a user who may see it, logged in the evidence log.

        Raises
        ------
        ForbiddenError
            ``by`` may not share this case (not theirs, not shared with them).
        """
        sharer = self.user(by)
        scope = self.case_scope(case_id)
        if not can(sharer, "case.share", scope):
            raise ForbiddenError(f"{by} may not share case {case_id!r}: it is not of their jurisdictions")
        if not jurisdiction or len(jurisdiction) > 32:
            raise AccessError(f"--with {jurisdiction!r}: give a unit code such as 30")
        from twin.evidence import binding
        from twin.evidence.log import iso, utc_now

        log = self.ledger.log
        with self.engine.begin() as conn:
            state = log.lock(conn)
            have = conn.execute(
                sa.select(case_shares.c.id).where(
                    case_shares.c.case_id == case_id, case_shares.c.jurisdiction == jurisdiction
                )
            ).first()
            if have is not None:
                raise AccessError(f"case {case_id!r} is already shared with {jurisdiction}")
            entry = binding.share_entry(  # the leaf holds every column of the row (twin.evidence.binding)
                time=iso(utc_now()),
                actor=by,
                share_id=binding.next_id(conn, case_shares),
                case_id=case_id,
                jurisdiction=jurisdiction,
                owners=scope.jurisdictions,
            )
            leaf = log.append(conn, [entry], state)[0]
            conn.execute(case_shares.insert(), binding.row("case_shares", leaf.index, entry))
        return {"case_id": case_id, "with": jurisdiction, "by": by, "leaf_index": leaf.index, "time": entry["time"]}

    def shares(self, case_id: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(case_shares).order_by(case_shares.c.id)
        if case_id is not None:
            q = q.where(case_shares.c.case_id == case_id)
        with self.engine.connect() as conn:
            return [
                {"case_id": r.case_id, "with": r.jurisdiction, "by": r.shared_by, "leaf_index": int(r.leaf_index)}
                for r in conn.execute(q)
            ]

    def log_access(self, user: User | str, action: str, **what: Any) -> None:
        """A read or export of evidence, as a leaf of the evidence log (who, when, what)."""
        from twin.evidence.log import iso, utc_now

        actor = user if isinstance(user, str) else user.name
        entry = {"kind": "access", "time": iso(utc_now()), "actor": actor, "action": action}
        entry.update({k: v for k, v in what.items() if v is not None})
        self.ledger.log.append_one(entry)

    # -- hearings --------------------------------------------------------------------------------
    def create_hearing(
        self,
        case_id: str,
        *,
        judge: str,
        hours: float,
        by: str,
        model: Model | None = None,
        agency: str | None = None,
        overlays: bool = True,
    ) -> Hearing:
        """Bundle a case for a hearing (:func:`twin.evidence.make_bundle`) and give it to a judge until ``hours`` from now."""
        from twin.evidence import make_bundle
        from twin.evidence.canonical import digest_file

        who = self.user(judge)
        if who.role != "judge":
            raise AccessError(
                f"{judge!r} is a {who.role}, not a judge; add one with `twin users add DIR NAME --role judge`"
            )
        if not 0 < hours <= 24 * 90:
            raise AccessError(f"--hours {hours}: give a duration between 0 and {24 * 90} hours")
        self.case_scope(case_id)
        hid = secrets.token_hex(8)
        folder = self.twin_dir / "hearings"
        folder.mkdir(exist_ok=True)
        path = folder / f"{hid}.zip"
        make_bundle(self.ledger, case_id, path, by=by, model=model, agency=agency, overlays=overlays)
        sha = digest_file(path)[0]["SHA-256"]
        now = int(time.time())
        expires = now + int(hours * 3600)
        with self.engine.begin() as conn:
            conn.execute(
                hearings.insert().values(
                    id=hid,
                    case_id=case_id,
                    bundle_path=str(path),
                    bundle_sha256=sha,
                    judge_id=who.id,
                    created=now,
                    created_by=by,
                    expires=expires,
                )
            )
        return self.hearing(hid)

    def hearing(self, hearing_id: str) -> Hearing:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(hearings, users.c.name.label("judge"))
                .join(users, users.c.id == hearings.c.judge_id)
                .where(hearings.c.id == hearing_id)
            ).first()
        if row is None:
            raise UnknownHearingError(f"no hearing {hearing_id[:40]!r}")
        return Hearing(
            row.id,
            row.case_id,
            Path(row.bundle_path),
            row.bundle_sha256,
            int(row.judge_id),
            row.judge,
            int(row.created),
            int(row.expires),
        )

    def set_expiry(self, hearing_id: str, expires: int) -> Hearing:
        """Move a hearing's expiry (the old link stops working: the expiry is signed)."""
        with self.engine.begin() as conn:
            conn.execute(hearings.update().where(hearings.c.id == hearing_id).values(expires=int(expires)))
        return self.hearing(hearing_id)

    def link(self, hearing: Hearing, base_url: str = "http://127.0.0.1:8000/") -> str:
        """The signed link of a hearing."""
        sig = sign_link(secret_key(self.twin_dir), hearing)
        return f"{base_url.rstrip('/')}/hearing/{hearing.id}?exp={hearing.expires}&sig={sig}"


class UnknownCaseError(TwinError, LookupError):
    """No evidence and no incident has this case id."""


class UnknownHearingError(TwinError, LookupError):
    """No hearing with this id."""


def _check_password(password: str) -> None:
    if len(password) < 10:
        raise AccessError("a password needs at least 10 characters")


def _hash_password(password: str) -> str:
    from werkzeug.security import generate_password_hash

    return generate_password_hash(password)


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the user does not exist, so both cases take as long."""
    return _hash_password(secrets.token_hex(8))


# -- the scope rule: what a user may see of warnings, incidents, cases and evidence ------------------


def case_units(places: Iterable[Any], incident_units: Iterable[Any]) -> frozenset[str]:
    """The units a case lies in: the union of its evidence places' units and its incidents' units.

    ``places`` are custody records' ``place.jurisdiction`` values, ``incident_units`` the
    incidents' ``{level: [codes]}`` (anything :func:`codes_of` reads).
    """
    out: set[str] = set()
    for units in (*places, *incident_units):
        out |= codes_of(units)
    return frozenset(out)


def case_resources(engine: sa.Engine, case_ids: Sequence[str] | None = None) -> dict[str, Resource]:
    """Every case of the store (or those of ``case_ids`` that exist) as a :class:`Resource`, in one pass.

    A case lies in :func:`case_units` of its custody records and incidents; a case id unknown
    to both is left out. This is the function :meth:`Access.case_scope` and incident
    visibility (:meth:`Scope.incident`) both use.
    """
    wanted = None if case_ids is None else set(case_ids)
    inc_q = sa.select(incidents.c.case_id, incidents.c.jurisdictions).where(incidents.c.case_id.is_not(None))
    if case_ids is not None:
        inc_q = inc_q.where(incidents.c.case_id.in_(list(case_ids)))
    places: dict[str, list[Any]] = {}
    units: dict[str, list[Any]] = {}
    with engine.connect() as conn:
        for e in log_entries(conn, "record"):
            custody = e.get("custody") or {}
            case_id = custody.get("case_id")
            if isinstance(case_id, str) and (wanted is None or case_id in wanted):
                places.setdefault(case_id, []).append((custody.get("place") or {}).get("jurisdiction"))
        for case_id, text in conn.execute(inc_q):
            units.setdefault(case_id, []).append(json.loads(text))
    return {c: Resource(case_units(places.get(c, ()), units.get(c, ())), case_id=c) for c in sorted({*places, *units})}


def log_entries(conn: sa.Connection, kind: str, marker: str | None = None) -> list[dict[str, Any]]:
    """The evidence log's entries of a kind, read from the leaves' own data (the truth), not from the
    tables beside them: a forged share or custody row grants nothing (and ``twin evidence check``
    names it). ``marker`` narrows the read to the leaves whose canonical JSON contains it."""
    q = sa.select(evidence_log.c.data).where(evidence_log.c.data.contains(f'"kind":"{kind}"'))
    if marker is not None:
        q = q.where(evidence_log.c.data.contains(marker))
    out = []
    for text in conn.execute(q).scalars():
        try:
            entry = json.loads(text)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("kind") == kind:
            out.append(entry)
    return out


def station_units(sites: Any, levels: Sequence[str]) -> dict[str, frozenset[str]]:
    """Each site's unit codes at every level (``sites``: a table with ``id`` and one column per level)."""
    import pandas as pd

    cols = [lv for lv in levels if lv in sites.columns]
    table = sites.set_index("id")[cols]
    return {str(i): codes_of([str(v) for v in row if pd.notna(v)]) for i, row in zip(table.index, table.values)}


#: the fields of a station's row in a time slice that say its warning (absent when not permitted)
WARNING_FIELDS = ("warning_level", "warning")


class Scope:
    """What one user may see of warnings, incidents, cases and evidence: the one rule every view asks.

    =========  ====================================================================================
    what       visible when
    =========  ====================================================================================
    model,     the role may (``model.read``, ``readings.read``): no unit scoping
    readings
    warning    ``warnings.read`` on its station's units: an investigator holds one of them
    case       ``evidence.read`` on the case: it lies in the union of the units of its evidence
               places and of its incidents (:func:`case_resources`), or it was shared with one of
               the user's units
    incident   with a case id: exactly when its case is (``incidents.read`` on the case's
               resource, so sharing a case shares its incidents); without: by its own units
    hearing    ``hearing.view``: its judge (and admins)
    =========  ====================================================================================

    ``cases`` (case id -> :class:`Resource`) and ``stations`` (station id -> unit codes) are
    mappings or functions that give one; a function is called once, at first need.
    """

    def __init__(
        self,
        user: User | None,
        *,
        cases: Mapping[str, Resource] | Callable[[], Mapping[str, Resource]] = _EMPTY,
        stations: Mapping[str, frozenset[str]] | Callable[[], Mapping[str, frozenset[str]]] = _EMPTY,
    ):
        self.user = user
        self._cases = cases
        self._stations = stations

    @functools.cached_property
    def case_index(self) -> Mapping[str, Resource]:
        return self._cases() if callable(self._cases) else self._cases

    @functools.cached_property
    def station_index(self) -> Mapping[str, frozenset[str]]:
        return self._stations() if callable(self._stations) else self._stations

    # -- by role ---------------------------------------------------------------------------------
    def may(self, action: str) -> bool:
        """Whether the user's role may take ``action`` at all (on some resource)."""
        return can(self.user, action)

    def permissions(self) -> list[str]:
        """The actions the user's role may take, in :data:`ACTIONS` order (none when anonymous)."""
        return [a for a in ACTIONS if can(self.user, a)]

    # -- warnings --------------------------------------------------------------------------------
    def sees_warnings_at(self, station: str) -> bool:
        """Whether the user may see the warnings of a station (an unknown station has no units)."""
        if not self.may("warnings.read"):
            return False
        return can(self.user, "warnings.read", Resource(self.station_index.get(str(station), frozenset())))

    def warning_mask(self, stations: Iterable[Any]) -> np.ndarray:
        """For each station id (of a warning), whether the user may see it."""
        import numpy as np

        stations = list(stations)
        if not self.may("warnings.read"):
            return np.zeros(len(stations), dtype=bool)
        seen: dict[str, bool] = {}
        out = np.empty(len(stations), dtype=bool)
        for k, s in enumerate(stations):
            key = str(s)
            if key not in seen:
                seen[key] = self.sees_warnings_at(key)
            out[k] = seen[key]
        return out

    def warnings(self, table: pd.DataFrame, column: str = "station") -> pd.DataFrame:
        """The rows of a table of warnings (one per warning, its station in ``column``) the user may see."""
        if not len(table):
            return table
        return table[self.warning_mask(table[column])]

    def slice_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A station's row of a time slice without its warning fields (:data:`WARNING_FIELDS`) when not permitted."""
        if self.sees_warnings_at(row["id"]):
            return row
        return {k: v for k, v in row.items() if k not in WARNING_FIELDS}

    # -- cases and incidents ---------------------------------------------------------------------
    def case(self, case_id: str) -> Resource:
        """The case as a resource (:func:`case_resources`), or :class:`UnknownCaseError`."""
        found = self.case_index.get(case_id)
        if found is None:
            raise UnknownCaseError(f"no case {case_id!r}: no evidence and no incident has this case id")
        return found

    def sees_case(self, case_id: str) -> bool:
        """Whether the user may see a case's evidence (an unknown case: no)."""
        found = self.case_index.get(case_id)
        return found is not None and can(self.user, "evidence.read", found)

    def cases(self) -> list[str]:
        """The case ids the user may see."""
        return [c for c in self.case_index if self.sees_case(c)]

    def incident(self, units: Any, case_id: str | None) -> Resource:
        """An incident as a resource: its case's when it has one the store knows, else its own units."""
        if case_id:
            found = self.case_index.get(case_id)
            return found if found is not None else Resource(codes_of(units), case_id=case_id)
        return Resource(codes_of(units))

    def sees_incident(self, units: Any, case_id: str | None) -> bool:
        return self.may("incidents.read") and can(self.user, "incidents.read", self.incident(units, case_id))

    def incident_mask(self, units: Iterable[Any], case_ids: Iterable[str | None]) -> np.ndarray:
        import numpy as np

        return np.array([self.sees_incident(u, c) for u, c in zip(units, case_ids)], dtype=bool)

    def incidents(self, table: pd.DataFrame) -> pd.DataFrame:
        """The rows of a table of incidents (``jurisdictions``, ``case_id``) the user may see."""
        import pandas as pd

        if not len(table):
            return table
        case_ids = [None if c is None or pd.isna(c) else str(c) for c in table["case_id"]]
        return table[self.incident_mask(table["jurisdictions"], case_ids)]

    # -- hearings --------------------------------------------------------------------------------
    def sees_hearing(self, hearing: Hearing) -> bool:
        """Whether the user may open a hearing without its signed link: its judge (and admins), until it expires."""
        return can(self.user, "hearing.view", Resource(judge_id=hearing.judge_id)) and time.time() < hearing.expires
