"""The HTTP decision API (FastAPI): decide, read the record, administer, and report health."""

from __future__ import annotations

from lictor.http.app import CONFIG_ENV, DEMO_ENV, app_from_env, create_app

__all__ = ["CONFIG_ENV", "DEMO_ENV", "app_from_env", "create_app"]
