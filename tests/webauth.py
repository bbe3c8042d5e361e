"""Users and tokens for the web tests: every endpoint but the login page and hearing links needs one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twin.access import Access, UnknownUserError

PASSWORD = "correct horse battery"


def token(folder: str | Path, name: str = "admin", role: str = "admin", **kw: Any) -> str:
    """A new API token of user ``name`` in the twin at ``folder`` (the user is added with ``role`` if missing)."""
    access = Access.open(folder)
    try:
        access.user(name)
    except UnknownUserError:
        access.add_user(name, role, password=PASSWORD, **kw)
    return access.new_token(name)


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def authorised(client: Any, tok: str) -> Any:
    """A Flask test client that sends ``tok`` with every request."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tok}"
    return client


#: the mine-leak scenario's case (its incident, a fish kill, is in Gard) and a second, Lozère-only case
CASE = "SCENARIO-mine-leak-1"
CASE_LOZERE = "DDT48-2026-017"
AGENCY = "DDT-Lozere"
ROLES = {
    "admin": ("admin", {}),
    "lozere": ("investigator", {"jurisdictions": ["48"]}),
    "gard": ("investigator", {"jurisdictions": ["30"]}),
    "researcher": ("researcher", {}),
    "judge": ("judge", {}),
    "judge2": ("judge", {}),
    "mialet": ("station", {"stations": ["GM-MIALET"]}),
}


def mine_leak_case(demo_dir: Path, folder: Path) -> dict[str, Any]:
    """A copy of the demo twin with the mine-leak scenario, a key, evidence and one user (and token) per role.

    Both cases' items are photos taken at the old mine, in Lozère (48): the cases are
    Lozère's until shared. Returns the basin, the scenario's truth, the tokens by user name
    and the items' hashes.
    """
    import shutil

    import numpy as np
    from PIL import Image

    import twin
    from twin.analysis.scenarios import run
    from twin.evidence.keys import init_keys

    shutil.copytree(demo_dir, folder)
    basin = twin.open(str(folder))
    truth = run(basin.model, basin.store, "mine-leak", folder=basin.path, seed=1)
    src = truth["source"]
    init_keys(folder, AGENCY)
    access = Access.open(folder)
    shas = {}
    for k, case_id in enumerate((CASE, CASE_LOZERE)):
        photo = folder.parent / f"DSC_00{42 + k}.png"
        rng = np.random.default_rng(k)
        Image.fromarray((rng.random((40, 56, 3)) * 200).astype("uint8")).save(photo)
        rec = access.ledger.add(
            photo,
            case_id=case_id,
            category="photo",
            description="drainage from the old mine entering the Gardon",
            acquired_at="2026-09-03T11:20+02:00",
            lon=src["lon"],
            lat=src["lat"],
            method="photographed from the left bank",
            tool="Nikon D7500",
            tool_version="fw 1.20",
            operators=["A. Martin", "B. Roux"],
            holder="DDT Lozère evidence room",
            by="lozere",
        )
        shas[case_id] = rec["sha256"]
    tokens = {name: token(folder, name, role, **kw) for name, (role, kw) in ROLES.items()}
    return {"basin": basin, "truth": truth, "tokens": tokens, "shas": shas, "access": access}
