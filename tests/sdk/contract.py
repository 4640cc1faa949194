"""A small real server of the HTTP contract the remote backend talks to: ``POST /v1/decide`` on a
real Gateway, with bearer keys, RFC 9457 problems and idempotency by ``request_id``; as an httpx mock
handler, a plain ASGI application and, for the guide, a loopback HTTP server in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from lictor import Action, InputError
from lictor.runtime import Gateway

AGENT_KEY = "lk_agent_test"
REVIEWER_KEY = "lk_reviewer_test"
MAX_BODY = 16 * 1024


def _problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None,
             ) -> tuple[int, dict[str, str], bytes]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return status, {"content-type": "application/problem+json"}, json.dumps(body).encode()


class Contract:
    """``POST /v1/decide`` as the HTTP contract describes it, on a real gateway, and nothing more."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.keys = {AGENT_KEY: "agent", REVIEWER_KEY: "reviewer"}
        self.answered: dict[tuple[str, str], bytes] = {}
        self.bodies: list[Any] = []
        self.decided = 0

    def respond(self, method: str, path: str, headers: Mapping[str, str], body: bytes,
                ) -> tuple[int, dict[str, str], bytes]:
        if path != "/v1/decide":
            return _problem(404, "Not Found", f"no route {path}")
        if method != "POST":
            return _problem(405, "Method Not Allowed", "decide with POST")
        auth = headers.get("authorization", "")
        key = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if key not in self.keys:
            return _problem(401, "Unauthorized", "a valid API key is required")
        if self.keys[key] != "agent":
            return _problem(403, "Forbidden", "deciding needs the agent scope")
        if len(body) > MAX_BODY:
            return _problem(413, "Content Too Large", f"the body is over {MAX_BODY} bytes",
                            [{"path": "$", "message": f"at most {MAX_BODY} bytes"}])
        try:
            data = json.loads(body)
        except ValueError:
            return _problem(400, "Bad Request", "the body is not JSON")
        self.bodies.append(data)
        try:
            action = Action.from_dict(data)
        except InputError as exc:
            return _problem(422, "Unprocessable Content", "the action is invalid",
                            [{"path": exc.path, "message": exc.message}])
        if action.request_id and (key, action.request_id) in self.answered:
            return 200, {"content-type": "application/json"}, self.answered[key, action.request_id]
        answer = json.dumps(self.gateway.decide(action).to_dict()).encode()
        self.decided += 1
        if action.request_id:
            self.answered[key, action.request_id] = answer
        return 200, {"content-type": "application/json"}, answer

    def handle(self, request: httpx.Request) -> httpx.Response:
        """The sync side, for ``httpx.MockTransport``."""
        status, headers, body = self.respond(request.method, request.url.path,
                                             {k.lower(): v for k, v in request.headers.items()}, request.read())
        return httpx.Response(status, headers=headers, content=body)

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The async side: a plain ASGI application."""
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, out, payload = await asyncio.to_thread(self.respond, scope["method"], scope["path"], headers, body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in out.items()]})
        await send({"type": "http.response.body", "body": payload})


@contextlib.contextmanager
def serve(contract: Contract) -> Iterator[str]:
    """Serve the contract over real HTTP on a free loopback port; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, out, payload = contract.respond(self.command, self.path, headers, body)
            self.send_response(status)
            for key, value in out.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
