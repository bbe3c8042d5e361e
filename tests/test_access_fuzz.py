"""The HTTP API fuzzed from its own OpenAPI description (schemathesis), as every role: no request gets a 5xx.

Each role's token (admin, both investigators, researcher, judge, station) and no token at all:
the scope rule runs for each of them, and a role that is refused must be refused cleanly.
Bounded: a few generated requests per operation and role (the whole run about two minutes).
The twin is a copy of the demo after the mine-leak scenario, with users (see
:func:`tests.webauth.mine_leak_case`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from twin_web import create_app

from .webauth import bearer, mine_leak_case

#: the users of tests.webauth.ROLES fuzzed, and how many requests each operation gets as each
USERS = {"admin": 6, "lozere": 6, "gard": 6, "researcher": 6, "judge": 3, "mialet": 3, None: 3}


@pytest.fixture(scope="module")
def fuzzed(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, str]]:
    case = mine_leak_case(demo_dir, tmp_path_factory.mktemp("fuzz") / "cevennes")
    app = create_app(
        case["basin"].path,
        testing=True,
        rate_login=(10_000, 100.0),
        rate_login_address=(10_000, 100.0),
        rate_ingest=(10_000, 100.0),
    )
    return app, case["tokens"]


@pytest.mark.parametrize("user", list(USERS), ids=lambda u: u or "anonymous")
def test_no_request_makes_a_server_error(fuzzed: tuple[Any, dict[str, str]], user: str | None) -> None:
    from hypothesis import given

    app, tokens = fuzzed
    headers = bearer(tokens[user]) if user else {}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app, headers=bearer(tokens["admin"]))
    errors: list[str] = []
    statuses: set[int] = set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @given(operation.as_strategy())
        @settings(
            max_examples=USERS[user],
            deadline=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def one(case: Any) -> None:
            response = case.call(headers=headers)
            statuses.add(response.status_code)
            if response.status_code >= 500:
                errors.append(
                    f"{case.method} {case.formatted_path} {case.query}: {response.status_code} {response.text[:300]}"
                )

        one()
    assert not errors, "\n".join(errors[:10])
    if user in (None, "judge", "mialet"):  # most of the API is refused to them, and it was, cleanly
        assert statuses & {401, 403}, statuses
    else:  # their views ran (and the scope rule in them)
        assert 200 in statuses, statuses
