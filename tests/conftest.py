"""Shared fixtures: offline, deterministic, registries rebuilt per test."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _fresh_registries():
    """Each test sees registries built from the current environment."""
    from colocam_plugin.api import reset_registries

    reset_registries()
    yield
    reset_registries()
