"""Errors of the evidence ledger; each a :class:`twin.TwinError` and the builtin a caller would expect."""

from __future__ import annotations

from twin.errors import TwinError


class EvidenceError(TwinError, ValueError):
    """Evidence that cannot be recorded, transferred or bundled as asked (bad input)."""


class CustodyError(EvidenceError):
    """A custody record or transfer that fails validation; the message names the field."""


class DuplicateEvidenceError(EvidenceError):
    """The same file is already recorded in the same case."""


class HashAlgorithmError(EvidenceError):
    """An unknown hash algorithm, or one this runtime's OpenSSL does not provide (SM3)."""


class UnknownEvidenceError(TwinError, LookupError):
    """A file hash, case or record that the ledger does not have."""


class TamperError(TwinError, ValueError):
    """Stored evidence, the log or a bundle does not verify: something was changed, reordered or removed."""


class DamagedBundleError(TamperError):
    """A bundle whose zip is damaged: a changed byte, a truncated file, a structure not as bundles are written."""


class BundleError(TwinError, OSError):
    """A court bundle that cannot be written or read (not a zip, a member missing, an unwritable path)."""


class SigningKeyError(TwinError, OSError):
    """An agency's signing key is missing, exists already, is unreadable or is too widely readable."""
