"""The look-behind guarantee, as a property: however the model's text is cut into chunks, and whatever
the window, a finding no longer than the look-behind is decided whole before any of it is released,
and everything else is released exactly once, in order."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lictor.model import Action, Decision, Verdict
from lictor.proxy.enforce import Exchange
from lictor.proxy.stream import StreamGuard
from tests.proxy.fake import text_chunks

CARD = "4111 1111 1111 1111"
PATTERN = re.compile(r"\d{4} \d{4} \d{4} \d{4}")


class Redacting:
    """A stand-in for the gateway: CONSTRAINs any text holding a card number, redacting it; records
    every text it was asked about."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def adecide(self, action: Action) -> Decision:
        text = action.content if isinstance(action.content, str) else ""
        self.seen.append(text)
        if action.kind == "llm_response" and PATTERN.search(text):
            return Decision("dec_x", Verdict.CONSTRAIN, action={"content": PATTERN.sub("[CARD]", text)})
        return Decision("dec_x", Verdict.ALLOW)


def cut(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


async def stream(pieces: list[str]) -> AsyncIterator[dict[str, Any]]:
    for chunk in text_chunks(*pieces):
        yield chunk


def released(guard: StreamGuard, pieces: list[str]) -> list[str]:
    async def collect() -> list[str]:
        out = []
        async for event in guard.events(stream(pieces)):
            data = event.decode()[len("data: "):].strip()
            if data != "[DONE]":
                chunk = json.loads(data)
                assert "error" not in chunk
                out += [c["delta"].get("content") or "" for c in chunk["choices"]]
        return out

    return asyncio.run(collect())


words = st.text(alphabet="abcdefghij ,.", max_size=120)


@settings(max_examples=150, deadline=None)
@given(before=words, after=words, cuts=st.lists(st.integers(0, 300), max_size=12),
       window=st.integers(0, 64), extra=st.integers(0, 40))
def test_a_card_split_anywhere_is_redacted_before_any_digit_is_released(
        before: str, after: str, cuts: list[int], window: int, extra: int) -> None:
    text = before + CARD + after
    gateway = Redacting()
    exchange = Exchange(gateway, "assistant", "agent", "fake")  # type: ignore[arg-type]
    guard = StreamGuard(exchange, "gpt-test", window=window, lookbehind=len(CARD) - 1 + extra)
    pieces = released(guard, cut(text, cuts))
    assert "".join(pieces) == before + "[CARD]" + after
    assert not any(ch.isdigit() for piece in pieces for ch in piece)


@settings(max_examples=100, deadline=None)
@given(text=words, cuts=st.lists(st.integers(0, 150), max_size=12), window=st.integers(0, 40),
       lookbehind=st.integers(0, 40))
def test_allowed_text_is_released_once_in_order_and_every_character_is_decided(
        text: str, cuts: list[int], window: int, lookbehind: int) -> None:
    gateway = Redacting()
    exchange = Exchange(gateway, "assistant", "agent", "fake")  # type: ignore[arg-type]
    guard = StreamGuard(exchange, "gpt-test", window=window, lookbehind=lookbehind)
    assert "".join(released(guard, cut(text, cuts))) == text
    decided = "".join(gateway.seen)
    assert all(ch in decided for ch in set(text))
    assert sum(len(s) for s in gateway.seen) >= len(text)
