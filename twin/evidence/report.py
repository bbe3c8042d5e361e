"""What a verification checked: one line per check, passed or failed, with what it found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    """The checks of one verification, in the order they ran."""

    subject: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    def note(self, text: str) -> None:
        """Something the reader must know that is neither a pass nor a failure (e.g. a check not possible here)."""
        self.notes.append(text)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def lines(self) -> list[str]:
        out = [f"{'ok  ' if c.ok else 'FAIL'}  {c.name}" + (f": {c.detail}" if c.detail else "") for c in self.checks]
        out += [f"note  {n}" for n in self.notes]
        passed = sum(c.ok for c in self.checks)
        verdict = "VERIFIED" if self.ok else "FAILED"
        out.append(f"{self.subject}: {verdict} ({passed} of {len(self.checks)} checks passed)")
        return out

    def summary(self) -> str:
        """One line naming what failed (for an error message)."""
        bad = self.failures
        if not bad:
            return f"{self.subject}: all {len(self.checks)} checks passed"
        shown = "; ".join(f"{c.name}: {c.detail}" if c.detail else c.name for c in bad[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        return f"{self.subject} failed {len(bad)} of {len(self.checks)} checks: {shown}{more}"

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "notes": self.notes,
        }
