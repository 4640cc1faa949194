"""The Python SDK: guard an agent's tools with a Lictor gateway, in this process or over HTTP.

::

    guard = Guard.local(policies="policies")        # or Guard.remote("http://127.0.0.1:8700", key)

    @guard.tool(system="support-bot")
    def issue_refund(order_id: str, amount: float) -> str: ...

The guide is docs/sdk.md.
"""

from lictor.sdk.backend import Backend, LocalBackend
from lictor.sdk.guard import Guard
from lictor.sdk.remote import DEFAULT_RETRIES, DEFAULT_TIMEOUT, RemoteBackend, new_request_id
from lictor.sdk.tool import Blocked

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "Backend",
    "Blocked",
    "Guard",
    "LocalBackend",
    "RemoteBackend",
    "new_request_id",
]
