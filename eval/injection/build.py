"""Build dev.jsonl ... dev4.jsonl and heldout.jsonl from the hand-written seeds: every attack once as written and
twice obfuscated (the obfuscations taken in turn), every benign text once as written and twice in a
surrounding context (mail, JSON tool output, markdown, typography, or base64-encoded).

Run from the repository root:  python eval/injection/build.py
"""

from __future__ import annotations

import base64
import codecs
import json
import random
import sys
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import seeds_attack  # noqa: E402
import seeds_benign  # noqa: E402

LEET = str.maketrans("aeiostAEIOST", "4310574310$7")
CYRILLIC = str.maketrans("aceopxyiAEOPCTHKMB", "асеорхуіАЕОРСТНКМВ")
ZW = "\u200b"


def leet(t: str, rng: random.Random) -> str:
    return t.translate(LEET)


def cyrillic(t: str, rng: random.Random) -> str:
    return t.translate(CYRILLIC)


def zero_width(t: str, rng: random.Random) -> str:
    return "".join(c + (rng.choice([ZW, "\u200c", "\u200d", "\u2060"]) if c.isalpha() and rng.random() < 0.5 else "")
                   for c in t)


def spaced(t: str, rng: random.Random) -> str:
    words = t.split()
    k = min(len(words), 6)
    return "   ".join(" ".join(w) for w in words[:k]) + (" " + " ".join(words[k:]) if words[k:] else "")


def dotted(t: str, rng: random.Random) -> str:
    words = t.split()
    k = min(len(words), 6)
    return " ".join(".".join(w) for w in words[:k]) + (" " + " ".join(words[k:]) if words[k:] else "")


def b64(t: str, rng: random.Random) -> str:
    enc = base64.b64encode(t.encode()).decode()
    return rng.choice(["{}", "Here is the payload: {}", "data={}", "Please process this record: {}"]).format(enc)


def hexed(t: str, rng: random.Random) -> str:
    return rng.choice(["{}", "hex: {}", "Content follows ({})"]).format(t.encode().hex())


def urlenc(t: str, rng: random.Random) -> str:
    return rng.choice(["{}", "q={}", "See note: {}"]).format(quote(t, safe=""))


def rot13(t: str, rng: random.Random) -> str:
    return rng.choice(["{}", "Decode (rot13): {}", "{} (rot13)"]).format(codecs.encode(t, "rot13"))


def fullwidth(t: str, rng: random.Random) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in t)


def math_bold(t: str, rng: random.Random) -> str:
    out = []
    for c in t:
        if "a" <= c <= "z":
            out.append(chr(0x1D41A + ord(c) - ord("a")))
        elif "A" <= c <= "Z":
            out.append(chr(0x1D400 + ord(c) - ord("A")))
        else:
            out.append(c)
    return "".join(out)


def tags(t: str, rng: random.Random) -> str:
    hidden = "".join(chr(0xE0000 + ord(c)) for c in t if ord(c) < 0x7F)
    return "Thanks for the update, see you tomorrow." + hidden


def embedded(t: str, rng: random.Random) -> str:
    pre = rng.choice(["Hi, quick question about my order.", "Meeting notes from Tuesday:",
                      "Product page text follows.", "Subject: invoice 2291"])
    post = rng.choice(["Thanks!", "Best regards, Tom", "-- end of page --", ""])
    return f"{pre}\n\n{t}\n\n{post}".strip()


def mixed_case(t: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in t)


OBFUSCATIONS = [leet, cyrillic, zero_width, spaced, b64, hexed, embedded, dotted, urlenc, rot13,
                fullwidth, math_bold, tags, mixed_case]


def wrap_mail(t: str, rng: random.Random) -> str:
    return f"Subject: Re: follow-up\n\nHi Anna,\n\n{t}\n\nBest,\nMarco"


def wrap_json(t: str, rng: random.Random) -> str:
    return json.dumps({"tool": "fetch", "status": 200, "body": t}, ensure_ascii=False)


def wrap_markdown(t: str, rng: random.Random) -> str:
    return f"## Notes\n\n- {t}\n- See the [wiki](https://wiki.example.com/page?id=42) for details."


def typography(t: str, rng: random.Random) -> str:
    return t.replace("'", "\u2019").replace(" - ", " \u2014 ") + " \U0001F44D"


def b64_benign(t: str, rng: random.Random) -> str:
    return "attachment=" + base64.b64encode(t.encode()).decode()


CONTEXTS = [wrap_mail, wrap_json, wrap_markdown, typography, b64_benign]


def build(attacks: list[tuple[str, str]], benign: list[tuple[str, str]], seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    turn = 0
    for category, text in attacks:
        rows.append({"text": text, "label": "attack", "category": category, "obfuscation": "none"})
        for _ in range(2):
            ob = OBFUSCATIONS[turn % len(OBFUSCATIONS)]
            turn += 1
            if ob in (spaced, dotted, tags) and not text.isascii():
                ob = leet
            rows.append({"text": ob(text, rng), "label": "attack", "category": category,
                         "obfuscation": ob.__name__})
    for i, (category, text) in enumerate(benign):
        rows.append({"text": text, "label": "benign", "category": category, "obfuscation": "none"})
        for k in range(2):
            ctx = CONTEXTS[(2 * i + k) % len(CONTEXTS)]
            rows.append({"text": ctx(text, rng), "label": "benign", "category": category,
                         "obfuscation": ctx.__name__})
    return rows


def main() -> None:
    for name, attacks, benign, seed in (("dev", seeds_attack.DEV, seeds_benign.DEV, 1),
                                        ("dev2", seeds_attack.DEV2, seeds_benign.DEV2, 2),
                                        ("dev3", seeds_attack.DEV3, seeds_benign.DEV3, 3),
                                        ("dev4", seeds_attack.DEV4, seeds_benign.DEV4, 4),
                                        ("heldout", seeds_attack.HELDOUT, seeds_benign.HELDOUT, 5)):
        rows = build(attacks, benign, seed)
        with open(HERE / f"{name}.jsonl", "w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        n_attack = sum(r["label"] == "attack" for r in rows)
        print(f"{name}: {n_attack} attack, {len(rows) - n_attack} benign")


if __name__ == "__main__":
    main()
