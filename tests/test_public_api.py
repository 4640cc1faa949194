"""Each package's public API is explicit: ``__all__`` sorted, complete, and every name importable."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import lictor

PACKAGES = ["lictor", "lictor.policy", "lictor.detect", "lictor.audit", "lictor.store", "lictor.errors",
            "lictor.model", "lictor.config", "lictor.sdk", "lictor.webhooks", "lictor.mcp", "lictor.proxy"]


def isort_style(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then functions (the order ruff's RUF022 keeps)."""
    if name.isupper() or (name.upper() == name and "_" in name):
        return (0, name)
    return (1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=isort_style)
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol}"


def test_every_module_says_what_it_is_for() -> None:
    for info in pkgutil.walk_packages(lictor.__path__, "lictor."):
        module = importlib.import_module(info.name)
        assert module.__doc__ and module.__doc__.strip(), f"{info.name} has no docstring"


def test_public_types_in_policy_are_reexported_at_top_level() -> None:
    assert lictor.load_policies is lictor.policy.load_policies
    assert lictor.PolicySet is lictor.policy.PolicySet


def test_the_sdk_is_reexported_at_top_level() -> None:
    import lictor.sdk

    assert lictor.Guard is lictor.sdk.Guard
    assert lictor.Blocked is lictor.sdk.Blocked
    assert issubclass(lictor.Blocked, lictor.LictorError)
    assert issubclass(lictor.GatewayError, lictor.LictorError)


def test_importing_lictor_builds_nothing_and_loads_no_http_client() -> None:
    import subprocess
    import sys

    code = "import sys, lictor; print(sorted(m for m in ('httpx', 'lictor.runtime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
