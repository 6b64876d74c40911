"""Fixtures for the Livepeer wire-client tests: self-signed orchestrator certificates."""

from __future__ import annotations

import pytest
from wire.lp_testkit import Cert, make_cert


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> list[Cert]:
    """Three different certificates for 127.0.0.1 (an O that restarts gets a new one)."""
    root = tmp_path_factory.mktemp("certs")
    return [make_cert(root / f"c{i}") for i in range(3)]
