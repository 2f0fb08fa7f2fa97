"""Schemathesis over the whole REST API, as an admin and as an annotator, on SQLite and PostgreSQL.

Bounded and repeatable: schemathesis's coverage cases (boundary values, wrong types, undocumented methods,
missing parameters) and a fixed number of generated examples per operation, from a fixed seed with
deterministic generation, sent to the real app and catalog of a site of its own (users, a project with
submitted reads and a review comment, a benchmark with labels and a submission), so the fuzzing changes nothing
the other tests see. Required: no server error and no schema violation: status codes, content types, headers and
bodies as the OpenAPI says, schema-invalid input refused, ``Allow`` on 405.

Not checked: ``positive_data_acceptance``: schema-valid marks can still break a QC rule that depends on the
project's label schema (a box class the project does not have), which no static schema can say; the rules a
schema can express (a non-blank comment, a reason code) are in it (``test_hardening.py``). Logout is left out:
it would end the session the run uses.

The run goes through schemathesis's engine (what ``schemathesis run`` drives) in this process, against the ASGI
app: its pytest plugin's fixture-based loader does not work with this pytest, and a server process per role and
backend would cost a minute more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from argon2 import PasswordHasher
from schemathesis.engine import Status, events, from_schema

from cxrlab.annotate import users
from cxrlab.web.app import create_app
from tests.support.leaderboard_data import csv_bytes, make_gt, make_submission
from tests.support.pg import BACKENDS
from tests.support.users import PASSWORD
from tests.web.conftest import Site, _make_site, new_pg_database

pytestmark = pytest.mark.slow  # schemathesis over every operation: thousands of requests

#: Generated examples per operation (the coverage cases come on top: about 1,800 requests per run on SQLite, 500
#: on PostgreSQL).
EXAMPLES = 3
SEED = 10
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
          "response_schema_conformance", "negative_data_rejection", "missing_required_header", "unsupported_method",
          "allow_header_conformance")
READ = {"labels": ["No finding"], "boxes": []}
PATCHED = "fuzzed"


def _populate(site: Site) -> None:
    """Objects for the fuzzed ids to find: a project with reads, a review with a comment, a benchmark, and
    the user whom ``PATCH /api/users/{username}`` changes (fuzzing it with the names it reads back from
    ``GET /api/users`` would end the sessions the run uses)."""
    assert site.post("/api/users", "admin", {"username": PATCHED, "password": PASSWORD, "role": "annotator"}
                     ).status_code == 201
    p = site.project(train=2, test=1)
    image = p.test[0]
    for who in ("reader1", "reader2", "reader3"):
        assert site.post(f"/api/tasks/{p.tasks[(who, image)]}/submit", who, {"version": 0, **READ}).status_code == 200
    assert site.post(f"/api/reviews/{p.reviews[('reviewer1', image)]}/comments", "reviewer1", {"text": "agree"}
                     ).status_code == 200
    gt = make_gt(4)
    bid = site.post("/api/benchmarks", "admin", {"name": "fuzz", "seed": 1}).json()["id"]
    assert site.put(f"/api/benchmarks/{bid}/labels", "admin", content=csv_bytes(gt)).status_code == 200
    r = site.post(f"/api/benchmarks/{bid}/submissions", "reader1",
                  content=csv_bytes(make_submission(gt, seed=1, noise=2.0)))
    assert r.status_code == 202, r.text


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The site, with Argon2 at its lowest cost: the run creates users and tries logins by the hundred, and the
    hash cost is not what it tests (``test_auth.py`` uses the real one)."""
    url = "" if request.param == "sqlite" else new_pg_database(request.getfixturevalue("pg_server_url"))
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "_hasher", hasher)
        patch.setattr(users, "_DUMMY_HASH", hasher.hash("dummy password"))
        site = _make_site(Path(tmp_path_factory.mktemp("fuzz")), request.param, url)
        _populate(site)
        yield site
    site.client.close()
    site.workspace.engine.dispose()


def _failures(event: events.ScenarioFinished) -> list[str]:
    out = []
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.status is Status.FAILURE and check.failure_info is not None:
                info = check.failure_info
                out.append(f"{event.label}: {check.name}: {info.failure}\n{info.code_sample}")
    return out


@pytest.mark.parametrize("who", ["admin", "reader1"])
def test_api_conforms_to_its_openapi(fuzz_site: Site, who: str) -> None:
    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "workers": 1,
        "cache": {"enabled": False},
        "headers": fuzz_site.h(who),
        "parameters": {"path.username": PATCHED},
        # Schema-invalid requests are refused before any database work: they run once, on SQLite.
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none",
                       "mode": "all" if fuzz_site.backend == "sqlite" else "positive"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    })
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzz_site.workspace), config=config)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    tested = set()
    for event in from_schema(schema.exclude(path="/api/auth/logout")).execute():
        if isinstance(event, events.ScenarioFinished):
            tested.add(event.label)
            failures += _failures(event)
            if event.status is Status.ERROR:
                failures.append(f"{event.label}: error")
            statuses.update(i.response.status_code for i in event.recorder.interactions.values() if i.response)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            failures.append(f"{getattr(event, 'label', 'run')}: {getattr(event, 'info', event)}")
    assert not failures, "\n\n".join(failures[:20])
    assert len(tested) >= 45 and statuses.total() >= 400, (len(tested), statuses)  # everything was exercised ...
    assert sum(n for code, n in statuses.items() if code < 300) >= 100, statuses  # ... with a live session
    assert statuses[500] == 0
    assert fuzz_site.get("/api/auth/me", who).status_code == 200
