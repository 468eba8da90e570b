"""Fixtures of the e2e suite: one bed per session, a fresh namespace per test, kubectl and waiting helpers.

The bed is started (and its binaries built, the first time) when a test asks for it; tests never skip
because it is missing. One bed serves the whole run: under pytest-xdist the controlling process names a
directory, the first worker that needs the bed starts it there (under a file lock; the others attach), and
the controller ends it after every worker is done. ``CANARYD_E2E_BED_DIR`` reuses a bed started with
``python -m e2e up``; ``CANARYD_E2E_KUBECONFIG`` + ``CANARYD_E2E_PROMETHEUS`` point the suite at an
external cluster."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.bed import Bed, BedError
from e2e.bed.bed import TEMP_PREFIX, reap_orphans
from e2e.bed.cluster import Cluster
from e2e.bed.external import external_from_env
from e2e.bed.waiting import wait_for as wait_for  # re-exported: tests import it from here too
from e2e.no403 import run_report

E2E_DIR = Path(__file__).parent

from e2e.operator_fixtures import canaryd_kubeconfig, operator, operator_factory  # noqa: E402,F401  (fixtures)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under e2e/ that uses the bed is an e2e test."""
    for item in items:
        if Path(str(item.fspath)).is_relative_to(E2E_DIR) and "bed" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


SHARED_DIR_ENV = "CANARYD_E2E_SHARED_BED"  # set by the controlling process, inherited by xdist workers
SHARED_OWNER_ENV = "CANARYD_E2E_SHARED_BED_OWNER"


def _uses_own_cluster() -> bool:
    return external_from_env() is not None or bool(os.environ.get("CANARYD_E2E_BED_DIR"))


RUN_STARTED = pytest.StashKey[float]()  # when the controlling process began (for the run's audit check)


def pytest_configure(config: pytest.Config) -> None:
    """The controlling process (a plain run, or the xdist controller) names the run's one bed dir; the bed
    itself starts only when a test asks for it. Orphans of killed runs are reaped here, once."""
    if not hasattr(config, "workerinput"):
        config.stash[RUN_STARTED] = time.time()
    if hasattr(config, "workerinput") or _uses_own_cluster() or SHARED_DIR_ENV in os.environ:
        return
    for orphan in reap_orphans():
        logging.getLogger("e2e.bed").warning("ended the bed of a killed test run in %s", orphan)
    os.environ[SHARED_DIR_ENV] = tempfile.mkdtemp(prefix=TEMP_PREFIX)
    os.environ[SHARED_OWNER_ENV] = str(os.getpid())


def _no_403_for_canaryd(session: pytest.Session, bed: Bed) -> None:
    """Least privilege over the whole run (issue 5 §1): once every worker is done, the bed's audit log must
    hold no 403 for a canaryd process; otherwise the run fails, listing the refused requests."""
    seen, refused = run_report(bed, session.config.stash.get(RUN_STARTED, 0.0))
    writer = session.config.get_terminal_writer()
    if refused:
        writer.line(f"\n{len(refused)} request(s) of canaryd refused with 403 during this run (audit log "
                    f"{bed.audit_log}):", red=True, bold=True)
        for line in refused[:50]:
            writer.line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif seen:
        writer.line(f"\nno 403 for canaryd: {seen} requests of canaryd processes in the audit log")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller checks the run's audit log for 403s of canaryd, then ends the shared bed after every
    worker is done (logs kept when a test failed)."""
    if hasattr(session.config, "workerinput"):
        return
    given = os.environ.get("CANARYD_E2E_BED_DIR")
    if given and (Path(given) / "bed.json").exists():
        _no_403_for_canaryd(session, Bed(given))
    if os.environ.get(SHARED_OWNER_ENV) != str(os.getpid()):
        return
    shared = Path(os.environ[SHARED_DIR_ENV])
    Path(f"{shared}.lock").unlink(missing_ok=True)
    if not (shared / "bed.json").exists():
        shutil.rmtree(shared, ignore_errors=True)
        return
    _no_403_for_canaryd(session, Bed(shared))
    failed = session.testsfailed > 0 or session.exitstatus != 0
    Bed(shared).down(keep_logs=failed)
    if failed:
        print(f"\ntest bed logs kept in {shared}")


def _shared_bed() -> Bed:
    """Start the run's bed in the shared dir, or attach to it when another worker already has."""
    shared = Path(os.environ[SHARED_DIR_ENV])
    with open(f"{shared}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held while the first worker starts the bed
        if (shared / "bed.json").exists():
            return Bed(shared)  # never restarted under the others' feet: a dead component fails loudly
        logging.getLogger("e2e.bed").setLevel(logging.INFO)
        new = Bed(shared)
        new.up(owner=int(os.environ[SHARED_OWNER_ENV]))
        return new


@pytest.fixture(scope="session")
def bed() -> Iterator[Cluster]:
    """The run's cluster: an external one (env), a running bed (``CANARYD_E2E_BED_DIR``) or the run's shared
    bed (a ``Bed``; tests that need its controls or audit log use them, an external cluster refuses them).
    Tests that stop a component start a ``Bed.temporary()`` of their own instead."""
    external = external_from_env()
    if external is not None:
        yield external
        return
    given = os.environ.get("CANARYD_E2E_BED_DIR")
    if given:
        reused = Bed(given)
        if not reused.state or not reused.procs.running("apiserver"):
            raise BedError("bed", f"CANARYD_E2E_BED_DIR={given} holds no running bed "
                           f"(python -m e2e up --dir {given})")
        yield reused
        return
    yield _shared_bed()


def _ns_name(node_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-")
    return f"e2e-{base}-{uuid.uuid4().hex[:5]}"


@pytest.fixture
def namespace(bed: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted after it (without waiting for the deletion to finish)."""
    name = _ns_name(request.node.name)
    bed.kubectl("create", "namespace", name)
    # istio-injection: sidecars when the suite runs on kind + Istio; no effect on the bed
    bed.kubectl("label", "namespace", name, "bed.canaryd.io/e2e=true", "istio-injection=enabled")
    try:
        yield name
    finally:
        bed.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def kubectl(bed: Cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``kubectl("get", "pods", "-n", ns)``: the bed's kubectl, admin kubeconfig (raises on failure)."""
    return bed.kubectl


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., object]:
    """The async ``wait_for(predicate, timeout, what)`` helper, as a fixture (also ``e2e.bed.waiting``)."""
    return wait_for
