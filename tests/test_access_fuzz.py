"""The HTTP API fuzzed from its own OpenAPI description (schemathesis), as an admin: no request gets a 500.

Bounded: a few generated requests per operation (the whole run well under a minute).
The twin is a copy of the demo after the mine-leak scenario, with users (see
:func:`tests.webauth.mine_leak_case`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from web import create_app

from .webauth import bearer, mine_leak_case


@pytest.fixture(scope="module")
def fuzzed(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    case = mine_leak_case(demo_dir, tmp_path_factory.mktemp("fuzz") / "cevennes")
    app = create_app(case["basin"].path, testing=True, rate_login=(10_000, 100.0), rate_ingest=(10_000, 100.0))
    return app, case["tokens"]["admin"]


def test_no_request_makes_a_server_error(fuzzed: tuple[Any, str]) -> None:
    from hypothesis import given

    app, token = fuzzed
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, headers=bearer(token))
    errors: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @given(operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def one(case: Any) -> None:
            response = case.call(headers=bearer(token))
            if response.status_code >= 500:
                errors.append(
                    f"{case.method} {case.formatted_path} {case.query}: {response.status_code} {response.text[:300]}"
                )

        one()
    assert not errors, "\n".join(errors[:10])
