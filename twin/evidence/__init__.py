"""Evidence that cannot be altered unnoticed: files by hash, custody records, a signed Merkle log, court bundles.

>>> from twin.evidence import Ledger, init_keys, make_bundle, verify_bundle
>>> init_keys("twins/cevennes", "DDT-Lozere")                                   # doctest: +SKIP
>>> ledger = Ledger.open("twins/cevennes")                                      # doctest: +SKIP
>>> ledger.add("outfall.jpg", case_id="C-1", category="photo", ...)             # doctest: +SKIP
>>> make_bundle(ledger, "C-1", "case.zip", by="a.martin")                       # doctest: +SKIP
>>> print("\\n".join(verify_bundle("case.zip", trusted=[fingerprint]).lines()))  # doctest: +SKIP

Modules: :mod:`.content` (the content-addressed store), :mod:`.custody` (the records
and their validation), :mod:`.canonical` (canonical JSON, SHA-256 and SM3),
:mod:`.merkle` (RFC 6962 tree hash and proofs), :mod:`.log` (the append-only log in
the operations store), :mod:`.keys` (Ed25519 keys per agency, signed tree heads),
:mod:`.ledger` (recording, transfers, logged reads, the audit), :mod:`.binding` (how
every row of the ledger's tables is recomputed from its log leaf), :mod:`.bundle`,
:mod:`.overlays` and :mod:`.viewer` (the court bundle), :mod:`.archive` (its zip, read
strictly) and :mod:`.verify` (checking one against the keys the verifier trusts).
"""

from __future__ import annotations

from twin.evidence.bundle import BundleResult, make_bundle
from twin.evidence.canonical import sm3_available
from twin.evidence.content import ContentStore, StoredFile
from twin.evidence.custody import CATEGORIES, CustodyRecord, Transfer, make_record, make_transfer
from twin.evidence.errors import (
    BundleError,
    CustodyError,
    DamagedBundleError,
    DuplicateEvidenceError,
    EvidenceError,
    HashAlgorithmError,
    SigningKeyError,
    TamperError,
    UnknownEvidenceError,
)
from twin.evidence.keys import PublicKey, SignedHead, Signer, TrustedKeys, init_keys
from twin.evidence.ledger import Ledger
from twin.evidence.log import Entry, EvidenceLog
from twin.evidence.report import Check, Report
from twin.evidence.verify import verify_bundle

__all__ = [
    "CATEGORIES",
    "BundleError",
    "BundleResult",
    "Check",
    "ContentStore",
    "CustodyError",
    "CustodyRecord",
    "DamagedBundleError",
    "DuplicateEvidenceError",
    "Entry",
    "EvidenceError",
    "EvidenceLog",
    "HashAlgorithmError",
    "Ledger",
    "PublicKey",
    "Report",
    "SignedHead",
    "Signer",
    "SigningKeyError",
    "StoredFile",
    "TamperError",
    "Transfer",
    "TrustedKeys",
    "UnknownEvidenceError",
    "init_keys",
    "make_bundle",
    "make_record",
    "make_transfer",
    "sm3_available",
    "verify_bundle",
]
