"""Settings: every setting as data (name, type, default, help, environment variable), loaded from a
YAML file and ``LICTOR_*`` environment variables, and validated at start.

``load_settings()`` reads ``--config FILE`` (or ``./lictor.yaml`` when present), then lets the
environment override any key (``LICTOR_AUDIT__DURABILITY=async``: a double underscore goes one level
down), and returns a frozen :class:`Settings` tree. Every problem is reported at once, each naming the
setting's dotted path and where its value came from (``lictor.yaml:7:3`` or ``LICTOR_PORT``); unknown
keys are errors, with a suggestion when one is close. Secret values that look like placeholders
(``changeme``, ``<token>``, ``xxxx``) are refused unless ``demo=True``.
"""

from __future__ import annotations

from lictor.config.catalogue import (
    SETTINGS,
    AuditSettings,
    HttpSettings,
    McpSettings,
    NotificationSettings,
    ProxySettings,
    ReviewSettings,
    Setting,
    Settings,
)
from lictor.config.kinds import (
    DEFAULT_CONFIG_FILE,
    ENV_PREFIX,
    McpServerSettings,
    SystemSettings,
    UpstreamSettings,
    WebhookSettings,
    format_duration,
    is_placeholder,
    parse_duration,
)
from lictor.config.load import load_settings

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "SETTINGS",
    "AuditSettings",
    "HttpSettings",
    "McpServerSettings",
    "McpSettings",
    "NotificationSettings",
    "ProxySettings",
    "ReviewSettings",
    "Setting",
    "Settings",
    "SystemSettings",
    "UpstreamSettings",
    "WebhookSettings",
    "format_duration",
    "is_placeholder",
    "load_settings",
    "parse_duration",
]
