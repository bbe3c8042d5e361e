"""The one error root of the twin and its subclasses.

Every error the library raises on purpose is a :class:`TwinError`. Each subclass is
also the builtin a Python user would expect (``OSError`` for unreadable sources,
``ValueError`` for bad values, ``LookupError`` for unknown names), so callers can
catch either. The message names what came in and what to do about it; the CLI
prints it as one line and exits with status 1.
"""

from __future__ import annotations


class TwinError(Exception):
    """Root of every error the twin raises on purpose."""


class CatalogError(TwinError, ValueError):
    """The catalog (``basin.yml``) is malformed: unknown key, missing field, bad value."""


class SourceError(TwinError, OSError):
    """A source file is missing, unreadable, corrupt or empty."""


class CRSError(TwinError, ValueError):
    """A CRS is missing, unreadable, or not usable for the twin."""


class OutsideBasinError(TwinError, ValueError):
    """A point or site lies outside the basin grid or its valid cells."""


class SnapError(TwinError, ValueError):
    """A point cannot be snapped to a river within the allowed distance."""


class TwinFolderError(TwinError, OSError):
    """A twin folder is missing, incomplete, or already exists where a new one goes."""


class OutputExistsError(TwinFolderError, FileExistsError):
    """The output folder of a build exists already."""


class UnknownReachError(TwinError, LookupError):
    """A reach id that the network does not have."""
