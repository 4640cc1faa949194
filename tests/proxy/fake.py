"""A real local model provider for the proxy's tests: an HTTP server on a free loopback port, speaking
OpenAI chat completions and Anthropic Messages (whole and streamed), answering from a script of canned
replies and recording every request it receives (headers and body)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UPSTREAM_KEY = "sk-upstream-test-0123456789abcdef"


def completion(content: str | None = "Hello!", *, tool_calls: list[dict[str, Any]] | None = None,
               model: str = "gpt-test") -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if tool_calls else "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}


def tool_call(name: str, arguments: Any, ident: str = "call_1") -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": ident, "type": "function", "function": {"name": name, "arguments": text}}


def text_chunks(*pieces: str, model: str = "gpt-test") -> list[dict[str, Any]]:
    """Streamed chunks: a role chunk, one chunk per piece of text, and a finishing chunk."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return [chunk({"role": "assistant", "content": ""}), *(chunk({"content": p}) for p in pieces), chunk({}, "stop")]


def tool_chunks(name: str, *argument_pieces: str, ident: str = "call_1") -> list[dict[str, Any]]:
    """Streamed chunks of one tool call whose arguments arrive in pieces."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_700_000_000,
                "model": "gpt-test", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    first = chunk({"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": ident, "type": "function", "function": {"name": name, "arguments": ""}}]})
    rest = [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in argument_pieces]
    return [first, *rest, chunk({}, "tool_calls")]


@dataclass
class Reply:
    """One canned answer: a JSON body with a status, a list of SSE events, or no answer at all (hang)."""

    status: int = 200
    body: Any = None
    events: list[tuple[str | None, Any]] | None = None  # (event name, data); data "[DONE]" is sent as is
    hang: bool = False


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstream:
    """The server's state: the replies still to give (the last one repeats) and what it received."""

    replies: list[Reply] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    release: threading.Event = field(default_factory=threading.Event)
    #: when set, answers every request from its body (a scripted model), instead of ``replies``
    responder: Callable[[Any], Reply] | None = None

    def reply(self, *replies: Reply) -> None:
        self.replies[:] = list(replies)

    def answer(self, body: dict[str, Any]) -> None:
        self.reply(Reply(body=body))

    def stream(self, chunks: list[dict[str, Any]], *, done: bool = True) -> None:
        self.reply(streamed(chunks) if done else Reply(events=[(None, c) for c in chunks]))

    def next(self, body: Any) -> Reply:
        if self.responder is not None:
            return self.responder(body)
        if not self.replies:
            return Reply(body=completion())
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    @property
    def last(self) -> Received:
        return self.received[-1]


def _handler(state: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length)
            body = json.loads(raw) if raw else None
            state.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            reply = state.next(body)
            if reply.hang:
                state.release.wait(10)
                self.close_connection = True
                return
            if reply.events is not None:
                self.send_response(reply.status)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for event, data in reply.events:
                    text = data if isinstance(data, str) else json.dumps(data)
                    frame = (f"event: {event}\n" if event else "") + f"data: {text}\n\n"
                    payload = frame.encode()
                    self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                return
            payload = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def streamed(chunks: list[dict[str, Any]]) -> Reply:
    """A reply streaming ``chunks`` then ``[DONE]``."""
    return Reply(events=[*((None, c) for c in chunks), (None, "[DONE]")])


def serve_fake() -> Iterator[FakeUpstream]:
    """Run the fake provider until the generator is closed."""
    state = FakeUpstream()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
