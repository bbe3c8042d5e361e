"""``twin keys``, ``twin evidence`` and ``twin audit``: the evidence ledger on the command line.

Data (JSON) goes to stdout, one object per line for lists; what a verification checked
is printed line by line. Who acts is ``--by NAME`` (default: the OS user, ``os:<name>``).
"""

from __future__ import annotations

import json
from typing import Any

import click

from twin.evidence.custody import CATEGORIES

by_opt = click.option("--by", default=None, help="Who does this (logged; default: the OS user).")


def _ledger(twin_dir: str) -> Any:
    from twin.evidence import Ledger

    return Ledger.open(twin_dir)


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


def _resolve(ledger: Any, sha: str, case_id: str | None) -> str:
    """A full SHA-256 from a unique prefix (at least 8 hex digits) of a recorded item."""
    from twin.evidence.errors import EvidenceError, UnknownEvidenceError

    sha = sha.lower()
    if len(sha) == 64:
        return sha
    if len(sha) < 8:
        raise EvidenceError(f"{sha!r} is too short; give the item's SHA-256 or at least its first 8 hex digits")
    hits = sorted({r["sha256"] for r in ledger.records(case_id, by=None) if r["sha256"].startswith(sha)})
    if len(hits) != 1:
        where = f" in case {case_id}" if case_id else ""
        raise UnknownEvidenceError(
            f"{sha!r} matches {'no item' if not hits else f'{len(hits)} items'}{where}; give more digits"
        )
    return hits[0]


# -- keys -----------------------------------------------------------------------------------------


@click.group()
def keys() -> None:
    """Signing keys (Ed25519), one per agency, in <twin>/keys."""


@keys.command("init")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--agency", required=True, help="Agency name: letters, digits, '.', '_', '-' (e.g. DDT-Lozere).")
def keys_init(twin_dir: str, agency: str) -> None:
    """Make an agency's key pair (private key mode 0600); prints the public key's path and fingerprint."""
    from twin.evidence.keys import init_keys, keys_dir

    pub = init_keys(twin_dir, agency)
    folder = keys_dir(twin_dir)
    _echo(
        {
            "agency": agency,
            "public_key": str(folder / f"{agency}.pub"),
            "private_key": str(folder / f"{agency}.key"),
            "fingerprint": pub.fingerprint,
        }
    )


@keys.command("list")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
def keys_list(twin_dir: str) -> None:
    """The agencies with a key here and their public keys' fingerprints (to publish)."""
    from twin.evidence.keys import agencies, public_key

    for agency in agencies(twin_dir):
        _echo({"agency": agency, "fingerprint": public_key(twin_dir, agency).fingerprint})


@keys.command("export")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option(
    "-o", "--output", default=None, type=click.Path(dir_okay=False), help="Write it to a file (default: stdout)."
)
def keys_export(twin_dir: str, output: str | None) -> None:
    """What the agencies with a key here publish: a trusted keys file (lines 'AGENCY FINGERPRINT').

    A verifier passes it to `twin evidence verify BUNDLE --trusted-keys FILE`.
    """
    from twin.evidence.keys import published_keys

    text = published_keys(twin_dir)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)


# -- evidence -------------------------------------------------------------------------------------


@click.group()
def evidence() -> None:
    """Evidence: files by hash, custody records, transfers, the signed log, court bundles."""


def _common(f: Any) -> Any:
    for opt in reversed(
        [
            click.option("--case", "case_id", required=True, help="Case id (e.g. 2026-GARD-0042)."),
            click.option("--category", type=click.Choice(CATEGORIES), required=True),
            click.option("--description", required=True, help="What the file shows or holds."),
            click.option("--operator", "operators", multiple=True, help="An operator (give at least two)."),
            click.option("--holder", required=True, help="Who holds the item after acquisition."),
            click.option("--witness", default=None),
            click.option("--seal", default=None, help="Seal number or storage-medium id."),
            click.option("--notes", default=None),
            click.option("--format", "file_format", default=None, help="MIME type (default: from the file name)."),
            click.option("--sm3", is_flag=True, help="Record the SM3 hash too (where this runtime has SM3)."),
            by_opt,
        ]
    ):
        f = opt(f)
    return f


@evidence.command("add")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("file", type=click.Path(dir_okay=False))
@_common
@click.option("--acquired-at", required=True, help="When it was acquired, with zone (e.g. 2026-09-02T14:05+02:00).")
@click.option("--lon", type=float, required=True, help="Where: longitude (or x) in --crs.")
@click.option("--lat", type=float, required=True, help="Where: latitude (or y) in --crs.")
@click.option("--crs", "coord_system", default="WGS84", show_default=True, help="WGS84, CGCS2000, GCJ-02 or EPSG:xxxx.")
@click.option("--jurisdiction", default=None, help="Default: the twin's units holding the point.")
@click.option("--address", default=None)
@click.option("--method", required=True, help="How it was acquired (e.g. photographed from the left bank).")
@click.option("--tool", required=True, help="Device or software used (e.g. Nikon D7500).")
@click.option("--tool-version", required=True, help="Its version (firmware, software version).")
def add(twin_dir: str, file: str, **kw: Any) -> None:
    """Record a file with its custody record; prints the record's summary as JSON."""
    kw["hashes"] = ("SHA-256", "SM3") if kw.pop("sm3") else ("SHA-256",)
    _echo(_ledger(twin_dir).add(file, **kw))


@evidence.command("derive")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("file", type=click.Path(dir_okay=False))
@_common
@click.option("--input", "inputs", multiple=True, help="SHA-256 of an input item (repeat for each).")
@click.option(
    "--function", required=True, help="What made it: a library function or the command line that re-makes it."
)
@click.option("--param", "params", multiple=True, help="A parameter KEY=VALUE (VALUE as JSON where it parses).")
@click.option(
    "--params", "params_file", type=click.Path(dir_okay=False, exists=True), help="Parameters as a JSON file."
)
@click.option("--made-at", default=None, help="When it was made, with zone (default: now).")
@click.option("--lon", type=float, default=None, help="Place it is about (optional), WGS84.")
@click.option("--lat", type=float, default=None)
@click.option("--jurisdiction", default=None)
def derive(twin_dir: str, file: str, params: tuple[str, ...], params_file: str | None, **kw: Any) -> None:
    """Record a product the twin made, with its inputs' hashes, the twin manifest's hash and its parameters."""
    from twin.evidence.errors import EvidenceError

    parameters: dict[str, Any] = {}
    if params_file:
        try:
            with open(params_file, encoding="utf-8") as fh:
                parameters = json.load(fh)
        except (ValueError, OSError) as err:
            raise EvidenceError(f"--params {params_file!r} is not a JSON object ({err})") from None
        if not isinstance(parameters, dict):
            raise EvidenceError(f"--params {params_file!r} must hold a JSON object")
    for p in params:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise EvidenceError(f"--param {p!r} is not KEY=VALUE")
        try:
            parameters[key] = json.loads(value)
        except ValueError:
            parameters[key] = value
    kw["hashes"] = ("SHA-256", "SM3") if kw.pop("sm3") else ("SHA-256",)
    kw["inputs"] = list(kw["inputs"])
    _echo(_ledger(twin_dir).derive(file, parameters=parameters, **kw))


@evidence.command("transfer")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("sha256")
@click.option("--case", "case_id", required=True)
@click.option("--to", required=True, help="Who receives it.")
@click.option("--reason", required=True)
@click.option("--at", "time", required=True, help="When it changed hands, with zone.")
@click.option("--from", "from_", default=None, help="Who gives it (default: its current holder; checked).")
@click.option("--seal", default=None, help="Seal or medium id after the transfer.")
@click.option("--witness", default=None)
@by_opt
def transfer(twin_dir: str, sha256: str, case_id: str, **kw: Any) -> None:
    """Record that an item changed hands; prints its custody summary."""
    ledger = _ledger(twin_dir)
    _echo(ledger.transfer(_resolve(ledger, sha256, case_id), case_id=case_id, **kw))


@evidence.command("list")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--case", "case_id", default=None, help="Only this case.")
@by_opt
def list_(twin_dir: str, case_id: str | None, by: str | None) -> None:
    """The recorded items (one JSON object per line); the listing is logged."""
    for rec in _ledger(twin_dir).records(case_id, by=by or ""):
        _echo(rec)


@evidence.command("show")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("sha256")
@click.option("--case", "case_id", required=True)
@by_opt
def show(twin_dir: str, sha256: str, case_id: str, by: str | None) -> None:
    """One item's custody record and transfers; the read is logged."""
    ledger = _ledger(twin_dir)
    _echo(ledger.record(_resolve(ledger, sha256, case_id), case_id, by=by or ""))


@evidence.command("get")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.argument("sha256")
@click.option("-o", "--output", required=True, help="File to write (whole or not at all).")
@click.option("--case", "case_id", default=None, help="The case it is read for.")
@click.option("--purpose", default=None, help="Why it is read (logged).")
@by_opt
def get(twin_dir: str, sha256: str, output: str, case_id: str | None, purpose: str | None, by: str | None) -> None:
    """Copy a recorded file out of the store, verified; the read is logged."""
    ledger = _ledger(twin_dir)
    full = _resolve(ledger, sha256, case_id)
    out = ledger.export_file(full, output, by=by, case_id=case_id, purpose=purpose)
    _echo({"sha256": full, "output": str(out)})


evidence.add_command(get, name="export")  # the same: a verified, logged copy out of the store


@evidence.command("sign")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--agency", default=None, help="Whose key signs (default: the only agency with a key).")
def sign(twin_dir: str, agency: str | None) -> None:
    """Sign the log's current tree head; prints it."""
    _echo(_ledger(twin_dir).sign(agency).to_json())


@evidence.command("proof")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--leaf", "leaf", type=int, default=None, help="Inclusion proof of this leaf index.")
@click.option("--from-size", "old", type=int, default=None, help="Consistency proof from this tree size.")
@click.option(
    "--size",
    type=int,
    default=None,
    help="Tree size to prove against (default: the newest signed head's, if it covers the leaf; else the log's).",
)
def proof(twin_dir: str, leaf: int | None, old: int | None, size: int | None) -> None:
    """An inclusion proof (--leaf) or a consistency proof (--from-size), RFC 6962, as JSON."""
    from twin.evidence.errors import EvidenceError

    log = _ledger(twin_dir).log
    if (leaf is None) == (old is None):
        raise EvidenceError("give --leaf INDEX (inclusion) or --from-size N (consistency)")
    if size is None:  # a signed head's tree, which can be checked against its signature
        signed = max((h.tree_size for h, _ in log.heads()), default=0)
        covered = leaf < signed if leaf is not None else old is not None and old <= signed
        n = signed if covered else log.size()
    else:
        n = size
    if leaf is not None:
        e = log.entry(leaf)
        path = log.inclusion_proof(leaf, n)
        _echo(
            {
                "tree_size": n,
                "root_hash": log.root(n).hex(),
                "leaf_index": leaf,
                "leaf_data": e.data.decode("utf-8"),
                "audit_path": [h.hex() for h in path],
            }
        )
    else:
        assert old is not None
        path = log.consistency_proof(old, n)
        _echo(
            {
                "old_size": old,
                "old_root": log.root(old).hex(),
                "tree_size": n,
                "root_hash": log.root(n).hex(),
                "proof": [h.hex() for h in path],
            }
        )


@evidence.command("bundle")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--case", "case_id", required=True)
@click.option("-o", "--output", required=True, help="The .zip to write (whole or not at all).")
@click.option("--agency", default=None, help="Whose key signs the head (default: the only agency with a key).")
@click.option("--at", default=None, help="Time the overlays show (default: the case's incident's observed time).")
@click.option("--plume-from", default=None, help="SHA-256 of a derived trace whose recorded release is drawn.")
@click.option("--no-overlays", is_flag=True, help="Leave out the rendered map and 3D view.")
@by_opt
def bundle(
    twin_dir: str,
    case_id: str,
    output: str,
    agency: str | None,
    at: str | None,
    plume_from: str | None,
    no_overlays: bool,
    by: str | None,
) -> None:
    """Write a case's court bundle (files, records, proofs, signed head, key, overlays, viewer)."""
    from twin.evidence import make_bundle

    ledger = _ledger(twin_dir)
    full = _resolve(ledger, plume_from, case_id) if plume_from else None
    click.echo(f"bundling case {case_id}...", err=True)
    res = make_bundle(ledger, case_id, output, by=by, agency=agency, at=at, overlays=not no_overlays, plume_from=full)
    _echo(
        {
            "output": str(res.path),
            "case_id": res.case_id,
            "items": res.items,
            "bytes": res.bytes,
            "manifest_sha256": res.manifest_sha256,
            "tree_size": res.head.tree_size,
            "root_hash": res.head.root_hash.hex(),
            "agency": res.head.agency,
            "key_fingerprint": res.head.key_fingerprint,
            "export_leaf": res.export_leaf,
        }
    )


@evidence.command("verify")
@click.argument("bundle_zip", type=click.Path(dir_okay=False))
@click.option(
    "--fingerprint",
    "fingerprints",
    multiple=True,
    help="Fingerprint of a signing key you trust, as its agency publishes it (repeat for several).",
)
@click.option(
    "--trusted-keys",
    "trusted_files",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="A file of published keys you trust: lines 'AGENCY FINGERPRINT', as `twin keys export` prints them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as one JSON object.")
def verify(bundle_zip: str, fingerprints: tuple[str, ...], trusted_files: tuple[str, ...], as_json: bool) -> None:
    """Check a court bundle without the server, against the keys you trust; prints every check.

    Exit status 1 if any check fails: also when no trusted key is given (the output says
    which key signed the bundle and how to pin it), and, with one line naming the damaged
    member, when the zip is damaged.
    """
    from twin.evidence import TamperError, verify_bundle
    from twin.evidence.keys import TrustedKeys

    trusted = TrustedKeys.of(fingerprints, trusted_files) if fingerprints or trusted_files else None
    report = verify_bundle(bundle_zip, trusted=trusted)
    if as_json:
        _echo(report.to_json())
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        raise TamperError(report.summary())


@evidence.command("check")
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--no-files", is_flag=True, help="Skip re-hashing the stored files.")
def check(twin_dir: str, no_files: bool) -> None:
    """Verify the ledger: every log leaf, node and signed head, every row of every ledger table against its
    leaf, each stored file. Prints one line per check, naming each table, row and column at fault; exit 1 if any."""
    from twin.evidence import TamperError

    report = _ledger(twin_dir).check(files=not no_files)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        raise TamperError(report.summary())


# -- audit ----------------------------------------------------------------------------------------


@click.command()
@click.argument("twin_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--case", "case_id", default=None, help="Only this case.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(("record", "transfer", "access", "export", "head")),
    help="Only these kinds of entries.",
)
def audit(twin_dir: str, case_id: str | None, kinds: tuple[str, ...]) -> None:
    """Who recorded, transferred, read, shared, exported or signed what, and when: the log's entries as they
    say it (not the columns beside them), one JSON object per line."""
    for entry in _ledger(twin_dir).audit(case_id, list(kinds) or None):
        _echo(entry)
