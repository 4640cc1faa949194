"""The remote backend: decisions from a Lictor gateway's HTTP API, with pooled connections, retries
only where they are safe, and a BLOCK decision (fail closed) when the gateway cannot be reached.

Each logical call sends its action with a ``request_id`` (a fresh random one unless the caller set
one). The gateway answers a repeated ``request_id`` from the same key with the original decision, so
resending after a lost connection or a 502/503/504 cannot record the action twice; that is the only
reason a POST is ever retried. A 4xx is the caller's problem and is raised (:class:`InputError` for
400/413/422, :class:`GatewayError` otherwise); anything else that is not a decision (no answer, a
timeout, a 5xx, an unreadable body) becomes a BLOCK decision that says so, unless the backend was
built with ``unsafe_fail_open=True``, in which case it becomes an ALLOW that says nothing was decided.
``httpx`` is imported when the first client is built, not with this module.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from lictor.errors import ConfigError, GatewayError, InputError
from lictor.model import Action, Decision, RuleError, Verdict

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_RETRIES", "DEFAULT_TIMEOUT", "INPUT_STATUSES", "MAX_WAIT", "RETRY_STATUSES", "RemoteBackend",
           "new_request_id"]

#: Seconds each attempt may take (connecting, sending, waiting for the answer), by default.
DEFAULT_TIMEOUT = 5.0
#: How many times a safe request is resent after a connection error or a 502/503/504, by default.
DEFAULT_RETRIES = 2
#: The longest one long poll of a review waits, in seconds (the gateway's own limit).
MAX_WAIT = 60.0
#: The answers that mean "a proxy or the gateway is briefly unavailable; try again".
RETRY_STATUSES = frozenset({502, 503, 504})
#: The answers that mean "this input is wrong" (RFC 9457 problems listing each error's JSON path).
INPUT_STATUSES = frozenset({400, 413, 422})
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_HINTS = {
    401: "the gateway did not accept the API key",
    403: "the API key's scope does not allow this (deciding needs an agent key)",
    404: "nothing answers this path: check the base URL",
}


def new_request_id() -> str:
    """A fresh random request id: 128 bits, so two logical calls never share one."""
    return f"req_{secrets.token_hex(16)}"


class RemoteBackend:
    """Decisions from a gateway at ``base_url``, authenticated with ``api_key`` (an agent key).

    ``timeout`` bounds each attempt; ``retries`` is how many times a safe request is resent, waiting
    ``backoff`` seconds doubled each time (with jitter, at most ``max_backoff``, longer when the
    gateway sends ``Retry-After``). ``transport`` and ``async_transport`` replace the network
    (``httpx.MockTransport``, ``httpx.ASGITransport``); ``sleep`` and ``async_sleep`` (default
    ``asyncio.sleep``) replace the waits between attempts. One sync and one async connection pool
    are built on first use; call :meth:`close` (or :meth:`aclose`, which closes both) when done.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, backoff: float = 0.05, max_backoff: float = 2.0,
                 unsafe_fail_open: bool = False, max_connections: int = 100,
                 transport: httpx.BaseTransport | None = None,
                 async_transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], object] = time.sleep,
                 async_sleep: Callable[[float], Awaitable[object]] | None = None) -> None:
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"expected the gateway's http:// or https:// URL, got {base_url!r}",
                              path="base_url")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError("an API key is required (create one with `lictor keys create --scope agent`)",
                              path="api_key")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigError(f"expected a positive number of seconds, got {timeout!r}", path="timeout")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"expected a whole number of retries, 0 or more, got {retries!r}", path="retries")
        for name, value in (("backoff", backoff), ("max_backoff", max_backoff)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"expected seconds, 0 or more, got {value!r}", path=name)
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.unsafe_fail_open = unsafe_fail_open
        self._api_key = api_key
        self._max_connections = max_connections
        self._transport = transport
        self._async_transport = async_transport
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"RemoteBackend({self.base_url!r})"  # never the key

    # ----------------------------------------------------------------------- decisions

    def decide(self, action: Action) -> Decision:
        body = _with_request_id(action).to_dict()
        try:
            data = self.request("POST", "/v1/decide", json=body)
        except GatewayError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                raise
            return self._unreached(exc)
        return self._decision(data)

    async def adecide(self, action: Action) -> Decision:
        body = _with_request_id(action).to_dict()
        try:
            data = await self.arequest("POST", "/v1/decide", json=body)
        except GatewayError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                raise
            return self._unreached(exc)
        return self._decision(data)

    # ----------------------------------------------------------------------- reviews

    def wait_review(self, review_id: str, timeout: float) -> dict[str, Any]:
        """Long-poll ``GET /v1/reviews/{id}?wait=`` (at most :data:`MAX_WAIT` seconds at a time)."""
        wait = max(0.0, min(float(timeout), MAX_WAIT))
        data = self.request("GET", _review_path(review_id, wait), timeout=self.timeout + wait)
        return _review(data)

    async def await_review(self, review_id: str, timeout: float) -> dict[str, Any]:
        """:meth:`wait_review` on the async connection pool."""
        wait = max(0.0, min(float(timeout), MAX_WAIT))
        data = await self.arequest("GET", _review_path(review_id, wait), timeout=self.timeout + wait)
        return _review(data)

    # ----------------------------------------------------------------------- requests

    def request(self, method: str, path: str, *, json: Mapping[str, Any] | None = None,
                timeout: float | None = None) -> Any:
        """Send one request and return its JSON answer. It is resent after a connection error or a
        502/503/504 only when that is safe: a GET, or a body that carries a ``request_id``. Raises
        :class:`InputError` (400/413/422) or :class:`GatewayError` (any other failure). ``timeout``
        replaces the backend's for this request (a long poll waits longer)."""
        import httpx

        attempt = 0
        while True:
            failure: httpx.Response | httpx.TransportError
            try:
                response = self._sync_client().request(method, path, json=json, **_timeout(timeout))
            except httpx.TransportError as exc:
                failure = exc
            except UnicodeEncodeError as exc:
                raise _not_text(exc) from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return self._read(response, path)
                failure = response
            if not _safe_to_retry(method, json) or attempt >= self.retries:
                raise self._unavailable(failure, attempt + 1)
            self._sleep(self._delay(attempt, failure))
            attempt += 1

    async def arequest(self, method: str, path: str, *, json: Mapping[str, Any] | None = None,
                       timeout: float | None = None) -> Any:
        """:meth:`request` on the async connection pool."""
        import httpx

        attempt = 0
        while True:
            failure: httpx.Response | httpx.TransportError
            try:
                response = await self._async_client_().request(method, path, json=json, **_timeout(timeout))
            except httpx.TransportError as exc:
                failure = exc
            except UnicodeEncodeError as exc:
                raise _not_text(exc) from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    return self._read(response, path)
                failure = response
            if not _safe_to_retry(method, json) or attempt >= self.retries:
                raise self._unavailable(failure, attempt + 1)
            delay = self._delay(attempt, failure)
            if self._async_sleep is not None:
                await self._async_sleep(delay)
            else:
                import asyncio

                await asyncio.sleep(delay)
            attempt += 1

    def close(self) -> None:
        """Close the sync connection pool (the async one needs :meth:`aclose`)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close both connection pools."""
        with self._lock:
            client, self._async_client = self._async_client, None
        if client is not None:
            await client.aclose()
        self.close()

    # ----------------------------------------------------------------------- internals

    def _options(self) -> dict[str, Any]:
        import httpx

        return {
            "base_url": self.base_url,
            "headers": {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json",
                        "User-Agent": "lictor-python"},
            "timeout": httpx.Timeout(self.timeout),
            "limits": httpx.Limits(max_connections=self._max_connections,
                                   max_keepalive_connections=self._max_connections),
            "follow_redirects": False,
        }

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(transport=self._transport, **self._options())
            return self._client

    def _async_client_(self) -> httpx.AsyncClient:
        with self._lock:
            if self._async_client is None:
                import httpx

                self._async_client = httpx.AsyncClient(transport=self._async_transport, **self._options())
            return self._async_client

    def _delay(self, attempt: int, failure: httpx.Response | httpx.TransportError) -> float:
        delay = min(self.max_backoff, self.backoff * 2.0 ** attempt) * (0.5 + random.random() / 2)
        after = _retry_after(failure)
        return max(delay, min(after, self.max_backoff)) if after is not None else delay

    def _unavailable(self, failure: httpx.Response | httpx.TransportError, attempts: int) -> GatewayError:
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        if isinstance(failure, Exception):
            kind = type(failure).__name__
            detail = f": {failure}" if str(failure) else ""
            return GatewayError(f"gateway unreachable at {self.base_url}{tries}: {kind}{detail}")
        problem = _problem(failure)
        said = problem.get("detail") or problem.get("title")
        return GatewayError(f"gateway unavailable at {self.base_url}{tries}: it answered "
                            f"{failure.status_code} {failure.reason_phrase}{f' ({said})' if said else ''}",
                            status=failure.status_code, problem=problem)

    def _read(self, response: httpx.Response, path: str) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError as exc:
                raise GatewayError(f"the gateway at {self.base_url} answered {status} with a body that is "
                                   f"not JSON", status=None) from exc
        if status >= 500:
            raise self._unavailable(response, 1)  # not one of RETRY_STATUSES: resending would not help
        problem = _problem(response)
        detail = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
        if status in INPUT_STATUSES:
            raise _input_error(problem, detail)
        hint = _HINTS.get(status)
        raise GatewayError(f"{status} {response.reason_phrase} from {self.base_url}{path}"
                           f"{f' ({hint})' if hint else ''}: {detail}", status=status, problem=problem)

    def _decision(self, data: Any) -> Decision:
        try:
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            return Decision.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            return self._unreached(GatewayError(
                f"the gateway at {self.base_url} answered something that is not a decision "
                f"({type(exc).__name__}: {exc})"))

    def _unreached(self, error: GatewayError) -> Decision:
        """The decision the gateway could not give: BLOCK (fail closed), or ALLOW marked as
        undecided when the backend is ``unsafe_fail_open``. It carries no ``audit``: nothing was
        recorded."""
        if self.unsafe_fail_open:
            verdict = Verdict.ALLOW
            note = RuleError("", "", f"{error.message}; NOT decided and NOT recorded, allowed because "
                                     f"unsafe_fail_open is set", False)
        else:
            verdict = Verdict.BLOCK
            note = RuleError("", "", f"{error.message}; blocked (fail closed)", True)
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return Decision(decision_id=f"dec_unreached_{secrets.token_hex(12)}", verdict=verdict,
                        errors=(note,), timestamp=now)


def _timeout(seconds: float | None) -> dict[str, Any]:
    if seconds is None:
        return {}
    import httpx

    return {"timeout": httpx.Timeout(seconds)}


def _review_path(review_id: str, wait: float) -> str:
    return f"/v1/reviews/{quote(review_id, safe='')}?wait={wait:.3f}"


def _review(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("status"), str):
        raise GatewayError("the gateway answered something that is not a review")
    return data


def _with_request_id(action: Action) -> Action:
    if action.request_id:
        return action
    return replace(action, request_id=new_request_id())


def _safe_to_retry(method: str, body: Mapping[str, Any] | None) -> bool:
    """Resending is safe for a request without effects, or one the gateway deduplicates by id."""
    if method.upper() in _IDEMPOTENT_METHODS:
        return True
    request_id = body.get("request_id") if body is not None else None
    return isinstance(request_id, str) and bool(request_id)


def _retry_after(failure: httpx.Response | httpx.TransportError) -> float | None:
    if isinstance(failure, Exception):
        return None
    value = failure.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date, or nothing: keep the backoff
    return seconds if seconds >= 0 else None


def _problem(response: httpx.Response) -> dict[str, Any]:
    """The RFC 9457 problem of a failed answer, or one made from its status when it sent none."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    text = response.text.strip()[:200]
    return {"title": response.reason_phrase, "status": response.status_code, **({"detail": text} if text else {})}


def _not_text(exc: UnicodeEncodeError) -> InputError:
    """A body that cannot be sent: a string in it holds an unpaired surrogate, which is not text."""
    return InputError(f"the action holds a string that is not text ({exc.reason}: "
                      f"{exc.object[exc.start:exc.end]!a}); nothing was sent")


def _input_error(problem: Mapping[str, Any], detail: str) -> InputError:
    errors = [e for e in problem.get("errors") or () if isinstance(e, dict)]
    if not errors:
        return InputError(detail)
    first, rest = errors[0], errors[1:]
    message = str(first.get("message", detail))
    message += "".join(f"; {e.get('path', '$')}: {e.get('message', '')}" for e in rest)
    return InputError(message, path=str(first.get("path") or "$"))
