"""The evidence ledger of a twin: files by hash, custody records, transfers, reads and exports, logged.

>>> from twin.evidence import Ledger
>>> ledger = Ledger.open("twins/cevennes")                                          # doctest: +SKIP
>>> rec = ledger.add("outfall.jpg", case_id="C-1", category="photo", description="outfall",
...                  acquired_at="2026-09-02T14:05+02:00", lon=3.84, lat=44.16, method="photographed",
...                  tool="Nikon D7500", tool_version="fw 1.20", operators=["A. Martin", "B. Roux"],
...                  holder="DDT Lozère evidence room", by="a.martin")             # doctest: +SKIP
>>> ledger.transfer(rec["sha256"], case_id="C-1", to="Lab", reason="analysis", time="...", by="b.roux")  # doctest: +SKIP

Every write runs in one database transaction that first takes the log's append lock,
so a record and its log leaf exist together or not at all; a file is hashed and its
record validated before it is copied into the content store, and removed again if the
transaction fails. Every read of a file (:meth:`Ledger.export_file`), every listing of
a case's records and every export is a leaf of the log too (who, when, what):
:meth:`Ledger.audit` lists them.

The log is the truth: each row of the ledger's tables is bound to a leaf that holds
every field of it (:mod:`twin.evidence.binding`). Readers compare the rows they show
with their leaves first and refuse (:class:`TamperError`) when one differs or a leaf of
the case has lost its row; :meth:`Ledger.check` compares every row of every table with
the whole log; :meth:`Ledger.case_items` (what a bundle holds) is taken from the log
after a full check.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import json
import mimetypes
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from twin.errors import TwinFolderError
from twin.evidence import binding
from twin.evidence.canonical import digest_file, is_sha256_hex
from twin.evidence.content import ContentStore
from twin.evidence.custody import CATEGORIES, CustodyRecord, make_record, make_transfer, parse_record
from twin.evidence.errors import CustodyError, DuplicateEvidenceError, EvidenceError, TamperError, UnknownEvidenceError
from twin.evidence.keys import SignedHead, Signer, agencies
from twin.evidence.log import EvidenceLog, iso, key_lookup, report_problems, utc_now
from twin.evidence.report import Report
from twin.ops import store as ops
from twin.ops.store import case_shares, custody_records, custody_transfers, evidence_items, evidence_log

MIME_EXTRA = {
    ".geojson": "application/geo+json",
    ".gpkg": "application/geopackage+sqlite3",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".csv": "text/csv",
    ".json": "application/json",
    ".nc": "application/x-netcdf",
    ".glb": "model/gltf-binary",
}


def default_actor() -> str:
    """The operating-system user, as ``os:<name>``: who acts when no ``by`` is given."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


def guess_format(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return MIME_EXTRA.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


@dataclass
class Ledger:
    """The evidence ledger of one twin folder (see the module docstring)."""

    twin_dir: Path
    engine: sa.Engine
    files: ContentStore
    keys_folder: Path | None = None

    @classmethod
    def open(
        cls,
        twin_dir: str | Path,
        *,
        database_url: str | None = None,
        store_dir: str | Path | None = None,
        keys_folder: str | Path | None = None,
        engine: sa.Engine | None = None,
    ) -> Ledger:
        """The ledger of a twin folder.

        Parameters
        ----------
        twin_dir:
            The twin folder (with ``twin.json``).
        database_url:
            The operations store; default ``TWIN_DATABASE_URL``, else ``ops.sqlite`` in the folder.
        store_dir:
            The content store; default ``<twin>/evidence``.
        keys_folder:
            Where the agencies' keys are; default ``<twin>/keys``.
        engine:
            An open engine of the operations store (e.g. ``basin.store``) instead of a URL.
        """
        from twin.settings import Settings

        folder = Path(twin_dir)
        if not (folder / "twin.json").is_file():
            raise TwinFolderError(
                f"'{folder}' is not a twin folder (no twin.json); build one with `twin build CATALOG -o {folder}`"
            )
        if engine is None:
            url = database_url or Settings.from_env().database_url or ops.sqlite_url(folder)
            engine = ops.connect(url)
        return cls(
            folder,
            engine,
            ContentStore(store_dir if store_dir is not None else folder / "evidence"),
            Path(keys_folder) if keys_folder is not None else None,
        )

    @functools.cached_property
    def log(self) -> EvidenceLog:
        """The ledger's Merkle log (one object, so that its appends know the state they left)."""
        return EvidenceLog(self.engine)

    def manifest_sha256(self) -> str:
        """SHA-256 of the twin's manifest (``twin.json``): which model derived products were made on."""
        return digest_file(self.twin_dir / "twin.json")[0]["SHA-256"]

    # -- recording ------------------------------------------------------------------------------
    def add(
        self,
        path: str | Path,
        *,
        case_id: str,
        category: str,
        description: str,
        acquired_at: Any,
        lon: float | None,
        lat: float | None,
        method: str,
        tool: str,
        tool_version: str,
        operators: Sequence[str],
        holder: str,
        by: str | None = None,
        coord_system: str = "WGS84",
        jurisdiction: str | None = None,
        address: str | None = None,
        witness: str | None = None,
        seal: str | None = None,
        notes: str | None = None,
        file_format: str | None = None,
        name: str | None = None,
        hashes: Sequence[str] = ("SHA-256",),
    ) -> dict[str, Any]:
        """Record a file acquired in the field or received (photo, lab report, orthophoto, export...).

        Returns the record as :meth:`records` lists it. ``lon``/``lat`` are in
        ``coord_system`` (WGS84, CGCS2000, GCJ-02 or EPSG:xxxx; kept, and converted to
        WGS84); the jurisdiction is looked up in the twin's units when not given.
        ``hashes`` may add "SM3" to SHA-256.

        Raises
        ------
        CustodyError
            A field a court would reject (the message names it).
        DuplicateEvidenceError
            The same file is already recorded in this case.
        HashAlgorithmError
            SM3 asked for on a runtime without it.
        """
        src = Path(path)
        place = self._place(lon, lat, coord_system, jurisdiction, address)
        data = {
            "case_id": case_id,
            "description": description,
            "category": category,
            "acquired_at": acquired_at,
            "place": place,
            "method": method,
            "tool": {"name": tool, "version": tool_version},
            "operators": list(operators),
            "holder": holder,
            "witness": witness,
            "seal": seal,
            "notes": notes,
        }
        return self._record(src, data, name or src.name, file_format, hashes, by)

    def derive(
        self,
        source: str | Path | bytes,
        *,
        case_id: str,
        category: str,
        description: str,
        inputs: Sequence[str],
        function: str,
        parameters: dict[str, Any],
        operators: Sequence[str],
        holder: str,
        by: str | None = None,
        name: str | None = None,
        made_at: Any = None,
        lon: float | None = None,
        lat: float | None = None,
        jurisdiction: str | None = None,
        method: str = "computed by the basin twin from the inputs and parameters recorded",
        witness: str | None = None,
        seal: str | None = None,
        notes: str | None = None,
        file_format: str | None = None,
        hashes: Sequence[str] = ("SHA-256",),
    ) -> dict[str, Any]:
        """Record a product the twin made (a trace, a map, a rendered exhibit) with what re-makes it.

        The record's ``derivation`` holds the inputs' hashes (each must be recorded in the
        ledger), the twin manifest's hash, ``function`` (what ran: a library function or a
        command line) and ``parameters``, and the software versions: running the same
        function with the same parameters on the same twin gives the same bytes.
        """
        from twin.model.folder import software_versions

        missing = [h for h in inputs if not (is_sha256_hex(h) and self._item_exists(h))]
        if missing:
            raise UnknownEvidenceError(
                f"inputs {missing} are not recorded evidence; record them first (twin evidence add) "
                "or give their SHA-256 as `twin evidence list` shows it"
            )
        with tempfile.TemporaryDirectory(prefix="twin-derive-") as tmp:
            if isinstance(source, bytes):
                if not name:
                    raise EvidenceError("a derived product given as bytes needs a file name (name=...)")
                src = Path(tmp) / Path(name).name
                src.write_bytes(source)
            else:
                src = Path(source)
            place = self._place(lon, lat, "WGS84", jurisdiction, None) if lon is not None or lat is not None else None
            versions = software_versions()
            data = {
                "case_id": case_id,
                "description": description,
                "category": category,
                "acquired_at": made_at if made_at is not None else iso(utc_now()),
                "place": place,
                "method": method,
                "tool": {"name": "basin-twin", "version": versions.get("twin", "unknown")},
                "operators": list(operators),
                "holder": holder,
                "witness": witness,
                "seal": seal,
                "notes": notes,
                "derivation": {
                    "inputs": list(inputs),
                    "twin_manifest_sha256": self.manifest_sha256(),
                    "function": function,
                    "parameters": json.loads(json.dumps(parameters, default=str)),
                    "software": versions,
                },
            }
            return self._record(src, data, name or src.name, file_format, hashes, by)

    def _place(
        self, lon: float | None, lat: float | None, system: str, jurisdiction: str | None, address: str | None
    ) -> dict[str, Any] | None:
        if lon is None and lat is None:
            return None
        if lon is None or lat is None:
            raise CustodyError("invalid custody record: field 'place': give both longitude and latitude (--lon, --lat)")
        from twin.model import coords

        wlon, wlat = (float(v) for v in coords.to_crs(lon, lat, system, "EPSG:4326"))
        converted = system.upper() not in ("WGS84", "EPSG:4326")
        if jurisdiction is None:
            jurisdiction = self.jurisdiction_at(wlon, wlat)
        return {
            "lon": round(wlon, 7),
            "lat": round(wlat, 7),
            "coord_system": system,
            "given": [float(lon), float(lat)] if converted else None,
            "jurisdiction": jurisdiction,
            "address": address,
        }

    def jurisdiction_at(self, lon: float, lat: float) -> str:
        """The twin's units holding a WGS84 point, top level first: "Lozère (48) > Florac (481) > ..."."""
        import pyogrio
        import pyogrio.errors
        import shapely
        from pyproj import Transformer

        try:
            manifest = json.loads((self.twin_dir / "twin.json").read_text(encoding="utf-8"))
            units = pyogrio.read_dataframe(self.twin_dir / "vectors.gpkg", layer="jurisdictions")
        except (OSError, ValueError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
            raise CustodyError(
                "invalid custody record: field 'place.jurisdiction': the twin's jurisdictions cannot be read "
                f"from '{self.twin_dir / 'vectors.gpkg'}'; name the jurisdiction (--jurisdiction)"
            ) from None
        x, y = Transformer.from_crs("EPSG:4326", units.crs, always_xy=True).transform(lon, lat)
        hit = units[units.contains(shapely.Point(x, y))]
        names = []
        for level in manifest.get("levels", []):
            u = hit[hit["level"] == level]
            if not u.empty:
                names.append(f"{u.iloc[0]['name']} ({u.iloc[0]['code']})")
        if not names:
            raise CustodyError(
                f"invalid custody record: field 'place.jurisdiction': ({lon}, {lat}) lies in none of the twin's "
                "jurisdictions; name it (--jurisdiction, e.g. the lab's city and its code)"
            )
        return " > ".join(names)

    def _record(
        self,
        src: Path,
        data: dict[str, Any],
        name: str,
        file_format: str | None,
        hashes: Sequence[str],
        by: str | None,
    ) -> dict[str, Any]:
        if data.get("category") not in CATEGORIES:
            raise CustodyError(
                f"invalid custody record: field 'category': {data.get('category')!r} is not one of {list(CATEGORIES)}"
            )
        if not src.is_file():
            raise EvidenceError(f"evidence file '{src}' does not exist or is not a file; give the path of a file")
        algs = ["SHA-256"] + [h for h in hashes if h.upper().replace("_", "-") not in ("SHA-256", "SHA256")]
        digests, size = digest_file(src, tuple(algs))
        data["file"] = {
            "name": name,
            "format": file_format or guess_format(name),
            "size": size,
            "hashes": [{"algorithm": k, "value": v} for k, v in digests.items()],
        }
        record = make_record(data)  # everything is checked before the file is copied
        actor = by or default_actor()
        stored = self.files.put(src)
        if stored.sha256 != record.sha256:
            raise EvidenceError(f"'{src}' changed while it was being recorded; record it again when it is complete")
        try:
            return self._insert(record, actor)
        except BaseException:
            if stored.new and not self._item_exists(stored.sha256):
                stored.path.unlink(missing_ok=True)  # a failed record leaves no file behind
            raise

    def _insert(self, record: CustodyRecord, actor: str) -> dict[str, Any]:
        now = utc_now()
        with self.engine.begin() as conn:
            state = self.log.lock(conn)
            dup = conn.execute(
                sa.select(custody_records.c.id).where(
                    (custody_records.c.case_id == record.case_id) & (custody_records.c.item_sha256 == record.sha256)
                )
            ).first()
            if dup is not None:
                raise DuplicateEvidenceError(
                    f"file {record.sha256} is already recorded in case {record.case_id} (record {dup.id}); "
                    "record a change of hands with `twin evidence transfer` instead"
                )
            new_item = (
                conn.execute(sa.select(evidence_items.c.sha256).where(evidence_items.c.sha256 == record.sha256)).first()
                is None
            )
            entry = binding.record_entry(
                time=iso(now),
                actor=actor,
                record_id=binding.next_id(conn, custody_records),
                custody=record.to_json(),
            )
            (leaf,) = self.log.append(conn, [entry], state)
            if new_item:  # the file's first record: the leaf its evidence_items row is bound to
                conn.execute(evidence_items.insert(), binding.row("evidence_items", leaf.index, entry))
            conn.execute(custody_records.insert(), binding.row("custody_records", leaf.index, entry))
        return self.record(record.sha256, record.case_id, by=None)

    def transfer(
        self,
        sha256: str,
        *,
        case_id: str,
        to: str,
        reason: str,
        time: Any,
        by: str | None = None,
        from_: str | None = None,
        seal: str | None = None,
        witness: str | None = None,
    ) -> dict[str, Any]:
        """Record that an item changed hands (from the current holder unless ``from_`` says who)."""
        actor = by or default_actor()
        now = utc_now()
        with self.engine.begin() as conn:
            state = self.log.lock(conn)
            rec, rows = self._item_rows(conn, sha256, case_id)
            chain = [json.loads(t["transfer"]) for t in rows]
            current = chain[-1]["to"] if chain else json.loads(rec["record"])["holder"]
            giver = from_ if from_ is not None else current
            if giver.casefold() != current.casefold():
                raise CustodyError(
                    f"invalid transfer: field 'from': {giver!r} does not hold item {sha256[:12]}...; "
                    f"its holder is {current!r}"
                )
            t = make_transfer(
                {
                    "case_id": case_id,
                    "item": sha256,
                    "record_sha256": rec["record_sha256"],
                    "from": giver,
                    "to": to,
                    "time": time,
                    "reason": reason,
                    "seal": seal,
                    "witness": witness,
                }
            )
            last = (
                dt.datetime.fromisoformat(chain[-1]["time"])
                if chain
                else parse_record(rec["record"].encode()).acquired_at
            )
            if t.time < last:
                raise CustodyError(
                    f"invalid transfer: field 'time': {t.time.isoformat()} is before the item's last custody "
                    f"event ({last.isoformat()}); give the time it changed hands, with zone"
                )
            entry = binding.transfer_entry(
                time=iso(now),
                actor=actor,
                transfer_id=binding.next_id(conn, custody_transfers),
                record_id=int(rec["id"]),
                seq=len(chain) + 1,
                transfer=t.to_json(),
            )
            (leaf,) = self.log.append(conn, [entry], state)
            conn.execute(custody_transfers.insert(), binding.row("custody_transfers", leaf.index, entry))
        return self.record(sha256, case_id, by=None)

    # -- reading (verified against the log, logged) ---------------------------------------------
    def _item_exists(self, sha256: str) -> bool:
        """Whether a record leaf of the log is about this file (the log, not the items table, decides)."""
        q = sa.select(evidence_log.c.data).where(
            (evidence_log.c.item_sha256 == sha256) & (evidence_log.c.kind == "record")
        )
        with self.engine.connect() as c:
            for (data,) in c.execute(q):
                e = binding.parse_entry(data) or {}
                if e.get("kind") == "record" and e.get("item") == sha256:
                    return True
        return False

    def _view(self, conn: sa.Connection, case_id: str | None, sha256: str | None = None) -> binding.View:
        """The records and transfers (of a case, of one of its items) and their leaves, compared.

        Leaves are found both ways: those the rows name, and those the log's index lists for
        the case and item (so a leaf whose row was deleted is found too). Raises
        :class:`TamperError` naming the first rows that are not as their leaves say.
        """
        q = sa.select(custody_records).order_by(custody_records.c.id)
        lq = sa.select(evidence_log.c.idx, evidence_log.c.data).where(evidence_log.c.kind.in_(["record", "transfer"]))
        if case_id is not None:
            q = q.where(custody_records.c.case_id == case_id)
            lq = lq.where(evidence_log.c.case_id == case_id)
        if sha256 is not None:
            q = q.where(custody_records.c.item_sha256 == sha256)
            lq = lq.where(evidence_log.c.item_sha256 == sha256)
        recs = [dict(r._mapping) for r in conn.execute(q)]
        trs = [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(custody_transfers)
                .where(custody_transfers.c.record_id.in_([r["id"] for r in recs]))
                .order_by(custody_transfers.c.record_id, custody_transfers.c.seq)
            )
        ]
        named = {int(r["leaf_index"]) for r in recs + trs if isinstance(r["leaf_index"], int)}
        found = {int(i): d for i, d in conn.execute(lq)}
        missing = sorted(named - set(found))
        if missing:
            found |= {
                int(i): d
                for i, d in conn.execute(
                    sa.select(evidence_log.c.idx, evidence_log.c.data).where(evidence_log.c.idx.in_(missing))
                )
            }
        leaves, others = {}, {}
        for i, d in found.items():
            e = binding.parse_entry(d) or {}
            of_this = (case_id is None or e.get("case_id") == case_id) and (sha256 is None or e.get("item") == sha256)
            if e.get("kind") in ("record", "transfer") and (of_this or i in named):
                leaves[i] = e
            else:
                others[i] = (e.get("kind"), e.get("action"))
        view = binding.View(leaves, {"custody_records": recs, "custody_transfers": trs}, others=others)
        problems = view.problems(["custody_records", "custody_transfers"])
        if problems:
            name, detail = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise TamperError(
                f"the evidence ledger does not match its log: {name}: {detail}{more}; nothing is shown from it "
                "until it does (see every problem with `twin evidence check DIR`)"
            )
        return view

    def _item_rows(self, conn: sa.Connection, sha256: str, case_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The record row of an item of a case and its transfer rows (in order), verified against their leaves."""
        view = self._view(conn, case_id, sha256)
        recs = view.rows["custody_records"]
        if not recs:
            raise UnknownEvidenceError(
                f"no item {sha256} in case {case_id!r}; list the case's items with `twin evidence list DIR --case {case_id}`"
            )
        return recs[0], _chain(view, recs[0])

    @staticmethod
    def summary(row: Any, transfer_rows: Sequence[Any]) -> dict[str, Any]:
        """What :meth:`records` lists of a record row and its transfer rows (mappings of their columns)."""
        rec = json.loads(row["record"])
        chain = [json.loads(t["transfer"]) for t in transfer_rows]
        return {
            "record_id": int(row["id"]),
            "case_id": row["case_id"],
            "sha256": row["item_sha256"],
            "name": rec["file"]["name"],
            "format": rec["file"]["format"],
            "size": rec["file"]["size"],
            "category": row["category"],
            "description": rec["description"],
            "acquired_at": rec["acquired_at"],
            "place": rec["place"],
            "derived": bool(row["derived"]),
            "holder": chain[-1]["to"] if chain else rec["holder"],
            "transfers": chain,
            "record_sha256": row["record_sha256"],
            "leaf_index": int(row["leaf_index"]),
        }

    def record(self, sha256: str, case_id: str, by: str | None = "") -> dict[str, Any]:
        """One item's custody: the record (``custody``), its transfers and current holder.

        A read by someone (``by``; default the OS user) is logged; ``by=None`` reads for
        the ledger itself (after a write) and is not.

        Raises
        ------
        UnknownEvidenceError
            The case has no such item.
        TamperError
            Its rows are not as their log leaves say (nothing is shown).
        """
        with self.engine.connect() as conn:
            row, chain = self._item_rows(conn, sha256, case_id)
        out = self.summary(row, chain)
        out["custody"] = json.loads(row["record"])
        if by is not None:
            self._log_access("show", by or default_actor(), case_id=case_id, item=sha256)
        return out

    def records(self, case_id: str | None = None, by: str | None = "") -> list[dict[str, Any]]:
        """The records (of one case, or all), oldest first; the listing is logged (see :meth:`record`).

        Raises :class:`TamperError` when a row is not as its leaf says, or a leaf lost its row.
        """
        with self.engine.connect() as conn:
            view = self._view(conn, case_id)
        out = [self.summary(r, _chain(view, r)) for r in view.rows["custody_records"]]
        if by is not None:
            self._log_access("list", by or default_actor(), case_id=case_id)
        return out

    def shares(self, case_id: str | None = None) -> list[dict[str, Any]]:
        """The units a case (or every case) is shared with, as their log leaves say.

        Raises :class:`TamperError` when a share row is not as its leaf says, or a leaf lost its row.
        """
        q = sa.select(case_shares).order_by(case_shares.c.id)
        lq = sa.select(evidence_log.c.idx, evidence_log.c.data).where(evidence_log.c.kind == "access")
        if case_id is not None:
            q, lq = q.where(case_shares.c.case_id == case_id), lq.where(evidence_log.c.case_id == case_id)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
            named = [int(r["leaf_index"]) for r in rows if isinstance(r["leaf_index"], int)]
            found = {int(i): d for i, d in conn.execute(lq.where(evidence_log.c.data.contains('"action":"share"')))}
            found |= {
                int(i): d
                for i, d in conn.execute(
                    sa.select(evidence_log.c.idx, evidence_log.c.data).where(evidence_log.c.idx.in_(named))
                )
            }
        leaves, others = {}, {}
        for i, d in found.items():
            e = binding.parse_entry(d) or {}
            share = e.get("kind") == "access" and e.get("action") == "share"
            if share and (case_id is None or e.get("case_id") == case_id or i in named):
                leaves[i] = e
            else:
                others[i] = (e.get("kind"), e.get("action"))
        problems = binding.View(leaves, {"case_shares": rows}, others=others).problems(["case_shares"])
        if problems:
            raise TamperError(
                f"the evidence ledger does not match its log: {problems[0][0]}: {problems[0][1]}; "
                "see every problem with `twin evidence check DIR`"
            )
        return [
            {"case_id": r["case_id"], "with": r["jurisdiction"], "by": r["shared_by"], "leaf_index": r["leaf_index"]}
            for r in rows
        ]

    def _log_access(self, action: str, actor: str, **what: Any) -> None:
        entry = {"kind": "access", "time": iso(utc_now()), "actor": actor, "action": action}
        entry.update({k: v for k, v in what.items() if v is not None})
        self.log.append_one(entry)

    def export_file(
        self,
        sha256: str,
        dest: str | Path,
        *,
        by: str | None = None,
        case_id: str | None = None,
        purpose: str | None = None,
    ) -> Path:
        """Copy a recorded file out of the store, verified; the read is logged (who, when, what, why).

        Nothing is written if the stored file was altered (:class:`TamperError`, also logged).
        """
        actor = by or default_actor()
        if not self._item_exists(sha256):
            raise UnknownEvidenceError(f"no recorded evidence file with SHA-256 {sha256}; see `twin evidence list`")
        if case_id is not None:
            with self.engine.connect() as conn:
                self._item_rows(conn, sha256, case_id)
        try:
            out = self.files.copy_to(sha256, dest)
        except TamperError:
            self._log_access("get", actor, case_id=case_id, item=sha256, purpose=purpose, result="altered")
            raise
        try:
            self._log_access("get", actor, case_id=case_id, item=sha256, purpose=purpose, result="ok")
        except BaseException:
            out.unlink(missing_ok=True)  # no read without its log entry
            raise
        return out

    def audit(self, case_id: str | None = None, kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Log entries (records, transfers, reads, exports): index, time, actor, kind, case, item, what."""
        out = []
        for e in self.log.entries(case_id, kinds):
            v = e.value
            what = {k: val for k, val in v.items() if k not in ("kind", "time", "actor", "case_id", "item")}
            out.append(
                {
                    "index": e.index,
                    "time": v.get("time"),
                    "actor": e.actor,
                    "kind": e.kind,
                    "case_id": e.case_id,
                    "item": e.item_sha256,
                    "what": what,
                }
            )
        return out

    # -- heads and checks -----------------------------------------------------------------------
    def signer(self, agency: str | None = None) -> Signer:
        """The signing key of ``agency``; without one, the only agency with a key here."""
        if agency is None:
            known = agencies(self.twin_dir, self.keys_folder)
            if len(known) != 1:
                from twin.evidence.errors import SigningKeyError

                raise SigningKeyError(
                    f"{'no agency has' if not known else 'several agencies have'} a signing key here "
                    f"({known or 'none'}); "
                    + (
                        "make one with `twin keys init DIR --agency NAME`"
                        if not known
                        else "choose one with --agency NAME"
                    )
                )
            agency = known[0]
        return Signer(self.twin_dir, agency, self.keys_folder)

    def sign(self, agency: str | None = None) -> SignedHead:
        """Sign the log's head now with the agency's key."""
        return self.log.sign(self.signer(agency))

    def check(self, files: bool = True) -> Report:
        """Verify the whole ledger; the report names every table, row and column at fault.

        The log first (:meth:`EvidenceLog.verify`: every leaf, column, node, the state and
        each signed head), then every row of every ledger table against the leaf it is
        bound to, both ways (:mod:`twin.evidence.binding`): a leaf that lost its row, a row
        without a leaf or on another row's leaf, a column that is not what its leaf says.
        With ``files``, every stored file is re-hashed too.
        """
        return self._check(files)[0]

    def _check(self, files: bool) -> tuple[Report, binding.View]:
        report, log_view = self.log.verify_entries(key_lookup(self.twin_dir, self.keys_folder))
        report.subject = "evidence ledger"
        tables = ("evidence_items", "custody_records", "custody_transfers", "case_shares")
        with self.engine.connect() as conn:
            rows = {t: [dict(r._mapping) for r in conn.execute(sa.select(binding.TABLES[t]))] for t in tables}
        view = binding.View(log_view.leaves, rows, log_size=log_view.log_size, others=log_view.others)
        for t in tables:
            report_problems(report, t, view.problems([t]), f"{len(rows[t])} rows, each as its leaf says")
            legacy = view.legacy(t)
            if legacy:
                report.note(
                    f"{t}: {len(legacy)} rows ({', '.join(x.split(' row ')[1] for x in legacy[:5])}"
                    f"{'...' if len(legacy) > 5 else ''}) were written before the ledger's binding (migration "
                    "0007): their leaves do not hold their ids, which are therefore not checked; every other "
                    "column is"
                )
        if files:
            damaged = []
            for sha in sorted(str(r["sha256"]) for r in rows["evidence_items"]):
                try:
                    self.files.verify(sha)
                except (TamperError, UnknownEvidenceError, EvidenceError) as err:
                    damaged.append(
                        f"{sha[:12]}... ({'missing' if isinstance(err, UnknownEvidenceError) else 'altered'})"
                    )
            report.check(
                "stored files match their hashes",
                not damaged,
                f"{len(rows['evidence_items'])} files re-hashed" if not damaged else ", ".join(damaged[:5]),
            )
        return report, view

    def case_items(self, case_id: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every item the log holds for a case, oldest first: its record row and transfer rows.

        Taken from the log's record leaves of the case after a full :meth:`check` (without
        re-hashing the stored files), so no row left out, added or edited can change what
        a bundle holds.

        Raises
        ------
        TamperError
            The check fails: its first problems are named.
        """
        report, view = self._check(files=False)
        if not report.ok:
            raise TamperError(
                f"the evidence ledger does not verify, so it is not exported: {report.summary()}; "
                f"see every problem with `twin evidence check {self.twin_dir}`"
            )
        out = []
        for idx in sorted(view.leaves):
            e = view.leaves[idx]
            if e.get("kind") == "record" and e.get("case_id") == case_id:
                rec = view.record_rows_by_leaf[idx]
                out.append((rec, _chain(view, rec)))
        return out


def _chain(view: binding.View, rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The transfer rows of a record row in a (verified) view, in the order of their leaves."""
    rows = [t for t in view.rows.get("custody_transfers", []) if t["record_id"] == rec["id"]]
    return sorted(rows, key=lambda t: int(t["leaf_index"]))
