
"""The cues of the injection detector: bounded regular expressions over folded, lower-cased,
de-leeted text, each with a type and a weight.

Weights: 0.8 and above is a cue that alone is an attack (an override verb with an instruction
object and a qualifier such as "previous" or "your"); 0.5 to 0.8 is a cue that is an attack in most
contexts; below 0.5 is a supporting cue that never reports alone ("pretend you are", "no
restrictions", "IMPORTANT:") but raises the cues near it. Between words the patterns allow
``\\W{0,4}`` (so letters joined after de-spacing still match); fillers are bounded.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import re2

from lictor.detect.normalize import fold

__all__ = ["CUES", "Compiled", "Cue", "compiled", "re2_pattern"]


@dataclass(frozen=True, slots=True)
class Cue:
    """One pattern: the ``type`` it reports, its ``weight`` and the pattern (Python syntax; matched
    through its RE2 translation, ``re2_pattern``)."""

    type: str
    weight: float
    pattern: re.Pattern[str]


_G = r"\W{0,4}"                                   # gap between words, possibly none
_F = r"(?:[a-z']{1,15}\W{1,4}){0,3}?"             # up to three filler words
_DET = r"(?:(?:all|any|every|each|of|the|your|these|those|its|such|whatever|prior\W{1,4}to)\W{0,4}){0,3}"
_AI = (r"(?:ai|a\.i\.|artificial\W{0,2}intelligence|ai\W{0,2}(?:assistant|agent|model|system|bot)|llm|"
       r"large\W{0,2}language\W{0,2}model|language\W{0,2}model|chat\W{0,2}bot|chatgpt|gpt\W?[345o]?\w*|"
       r"claude|gemini|bard|copilot|llama|mistral)")
_AGENTISH = r"(?:assistant|agent|model|bot|system)"

_IGNORE_VERB = (
    r"(?:ignor(?:e|ing)|disregard(?:ing)?|forget(?:ting)?|overlook|set\W{0,4}aside|throw\W{0,4}out|"
    r"stop\W{0,4}(?:following|obeying)|(?:do\W{0,4}not|don'?t|never)\W{0,4}(?:follow|obey|adhere\W{0,4}to|"
    r"comply\W{0,4}with|listen\W{0,4}to)|no\W{0,4}longer\W{0,4}(?:follow|obey)|never\W{0,4}mind|"
    r"pay\W{0,4}no\W{0,4}attention\W{0,4}to)"
)
_OTHER_VERB = (r"(?:skip|discard|drop|abandon|neglect|overrid(?:e|ing)|overwrite|overrule|bypass|circumvent|"
               r"erase|delete|clear|reset|wipe|cancel|scrap|scratch|remove|disable|turn\W{0,4}off)")
_OVERRIDE_VERB = rf"(?:{_IGNORE_VERB}|{_OTHER_VERB})"
_AGE_STRONG = (r"(?:previous(?:ly)?|prior|preceding|earlier|above|foregoing|afore\w{0,12}|former|original|"
               r"initial|system|developer|hidden|first|built\W?in)")
_AGE = (r"(?:previous(?:ly)?|prior|preceding|earlier|above|foregoing|afore\w{0,12}|former|original|"
        r"initial|past|system|developer|hidden|first|pre\W?set|built\W?in)")
_INSTR = (r"(?:instructions?|instruct|directions?|directives?|prompts?|rules?|guidelines?|guidance|"
          r"constraints?|commands?|programming|training|conditioning|restrictions?|"
          r"safeguards?|guardrails?|limitations?|protocols?|principles|ethics|morals|"
          r"configuration|system\W{0,4}prompt|context|conversation|messages?|inputs?|text|tasks?)")
_INSTR_STRONG = (r"(?:instructions?|directions?|directives?|prompts?|rules|guidelines?|guidance|"
                 r"constraints?|commands|programming|training|conditioning|polic(?:y|ies)|restrictions|"
                 r"safeguards?|guardrails?|limitations|protocols?|principles|ethics|morals)")
_REVEAL = (r"(?:reveal|show|print|display|output|repeat|recite|tell|give|share|leak|dump|expose|"
           r"disclose|write|spell|copy|paste|list|provide|return|echo|type|state|quote|reproduce|"
           r"summari[sz]e|translate|paraphrase|describe|send|read\W{0,4}(?:back|out)|what|which)")
_SP_QUAL = (r"(?:system|initial|original|hidden|secret|internal|developer|pre\W?|starting|first|"
            r"confidential|base|meta|underlying|full|exact|entire|complete|verbatim|raw|private|"
            r"opening|preset|built\W?in)")
_SP_OBJ = r"(?:prompts?|instructions?|directives?|preamble|system\W{0,4}message|guidelines|rules)"
_PERSONA = (r"(?:pretend(?:ing)?|imagine|suppose|act(?:ing)?|behave|role\W?play(?:ing)?|play\W{0,4}the\W{0,4}"
            r"(?:role|part)|take\W{0,4}on\W{0,4}the\W{0,4}(?:role|persona)|you\W{0,4}are\W{0,4}now|"
            r"you'?re\W{0,4}now|from\W{0,4}now\W{0,4}on\W{0,4}you\W{0,4}(?:are|will\W{0,4}be)|become|"
            r"simulate|emulate|impersonate|(?:respond|answer|speak|reply|write|talk)\W{0,4}as|"
            r"you\W{0,4}will\W{0,4}(?:now\W{0,4})?(?:be|act|play))")
_BYPASS_ADJ = (r"(?:unrestricted|unfiltered|uncensored|unlimited|unbound|unchained|unhinged|amoral|"
               r"immoral|unethical|evil|rogue|jailbroken|jailbreak|lawless|limitless|no\W?limits?|"
               r"no\W?rules|no\W?restrictions|no\W?filters?|uncontrolled|malicious|opposite|anti\W?gpt)")
_LIMITS = (r"(?:restrictions?|limitations?|limits|filters?|filtering|censorship|guidelines|rules|"
           r"boundaries|constraints|polic(?:y|ies)|ethics|morals|morality|guardrails|safeguards|"
           r"principles|programming)")

_RAW: list[tuple[str, float, str]] = [
    # --- override: an override verb, an instruction object and a qualifier
    ("injection.override", 0.9, rf"(?<![a-z]){_IGNORE_VERB}{_G}{_DET}{_AGE}{_G}{_F}{_INSTR}"),
    ("injection.override", 0.85, rf"(?<![a-z]){_OTHER_VERB}{_G}{_DET}{_AGE_STRONG}{_G}{_F}{_INSTR_STRONG}"),
    ("injection.override", 0.85, rf"(?<![a-z]){_OVERRIDE_VERB}{_G}{_DET}{_F}{_INSTR_STRONG}\W{{1,4}}(?:(?:that|which)\W{{1,4}})?"
     rf"(?:above|before|so\W{{1,4}}far|previously|earlier|up\W{{1,4}}to\W{{1,4}}now|from\W{{1,4}}before|you(?:'ve|\W{{1,4}}have|"
     rf"\W{{1,4}}were|\W{{1,4}}had)\W{{1,4}}(?:been\W{{1,4}})?(?:given|told|received|taught)|given\W{{1,4}}(?:to\W{{1,4}}you|earlier|before)|"
     rf"that\W{{1,4}}came\W{{1,4}}before)"),
    ("injection.override", 0.85, rf"(?<![a-z]){_OVERRIDE_VERB}{_G}(?:all{_G}|any{_G})?(?:of{_G})?(?:your|its){_G}"
     rf"(?:[\w']{{1,15}}{_G})?(?:{_INSTR}|polic(?:y|ies))"),
    ("injection.override", 0.8, rf"(?<![a-z]){_OVERRIDE_VERB}{_G}(?:all|any|every){_G}(?:of{_G})?(?:the{_G})?"
     rf"(?:\w{{1,15}}{_G})?{_INSTR_STRONG}"),
    ("injection.override", 0.4, rf"(?<![a-z]){_OVERRIDE_VERB}{_G}(?:the|my|these|those){_G}(?:\w{{1,15}}{_G})?"
     rf"{_INSTR_STRONG}"),
    ("injection.override", 0.85, rf"(?<![a-z]){_IGNORE_VERB}\W{{1,4}}(?:about{_G})?(?:everything|all|"
     rf"anything|what|whatever)\W{{1,4}}(?:(?:that|which){_G})?(?:you(?:'ve|{_G}have|{_G}were|{_G}had)?{_G}(?:been{_G})?"
     rf"(?:told|taught|instructed|asked|given|learned|programmed|trained|read)|above|before|prior|previously|so{_G}far|"
     rf"until{_G}now|up{_G}to{_G}(?:now|this{_G}point|here)|said\W{{1,4}}(?:above|before|earlier)|in{_G}your)"),
    ("injection.override", 0.85, r"(?<![a-z])(?:whatever|everything|anything|what|all)\W{1,4}(?:that\W{1,4})?you(?:'ve|\W{1,4}have|"
     r"\W{1,4}were|\W{1,4}had)?\W{1,4}(?:been\W{1,4})?(?:told|given|instructed|taught|programmed|asked)\W{1,4}(?:[\w']{1,15}\W{1,4}){0,3}?"
     r"(?:does\W{1,4}not|doesn'?t|no\W{1,4}longer|is\W{1,4}(?:now\W{1,4})?(?:void|irrelevant|cancell?ed|invalid))\W{0,4}(?:matters?|appl(?:y|ies)|count)?"),
    ("injection.override", 0.85, rf"(?<![a-z]){_IGNORE_VERB}{_G}{_DET}{_INSTR_STRONG}\W{{1,4}}(?:in|from|of|inside|within)\W{{1,4}}"
     rf"(?:your|the\W{{1,4}}system)"),
    ("injection.override", 0.4, r"(?<![a-z])(?:forget|ignore)\W{1,4}(?:everything|all\W{1,4}that)(?![a-z])"),
    ("injection.override", 0.85, rf"(?<![a-z])(?:(?:the|your|all|of){_G}){{0,3}}(?:above|previous|prior|preceding|earlier|original|"
     rf"old|initial|system)"
     rf"{_G}(?:instructions?|rules|prompts?|directions|directives|guidelines|constraints|restrictions)"
     rf"{_G}(?:(?:are|were|is|was|have{_G}been|has{_G}been|do|does){_G})?(?:now{_G})?(?:void|null|invalid|cancell?ed|revoked|obsolete|outdated|fake|deprecated|"
     rf"no{_G}longer{_G}(?:valid|appl(?:y|ies)|applicable|in{_G}effect|matter)|not{_G}appl(?:y|ies)|n'?t{_G}appl(?:y|ies)|overridden|superseded|replaced|irrelevant)"),
    ("injection.override", 0.7, rf"(?<![a-z])your{_G}(?:new|real|actual|true|updated|only|next|sole){_G}"
     rf"(?:instructions?|task|goal|objective|mission|purpose|role|directive|orders?|job){_G}(?:is|are|will{_G}be|:)"),
    ("injection.override", 0.45, rf"(?<![a-z])(?:new|updated|real|actual|revised|override|overriding|secret|priority)"
     rf"{_G}(?:system{_G})?(?:instructions?|directives?|orders|rules|prompt)\W{{0,3}}:"),
    ("injection.override", 0.45, rf"(?<![a-z])from{_G}now{_G}on\W{{1,4}}(?:you|u|your)(?![a-z])"),
    ("injection.override", 0.6, rf"(?<![a-z])(?:you{_G}(?:must|will|shall|have{_G}to){_G}(?:now{_G})?(?:only{_G})?"
     rf"(?:obey|follow|listen{_G}to){_G}(?:me|my|these|the{_G}following|only))"),
    # multilingual override (after folding diacritics and look-alikes)
    ("injection.override", 0.85, r"(?<![a-z])(?:ignorier\w{0,4}|vergiss|vergessen\w{0,2}|missacht\w{0,4})\W{1,4}(?:\w{1,15}\W{1,4}){0,3}?"
     r"(?:anweisung\w{0,3}|instruktion\w{0,3}|befehl\w{0,3}|regeln|vorgaben|richtlinien|systemprompt\w{0,2})"),
    ("injection.override", 0.85, r"(?<![a-z])(?:ignor\w{0,4}|oubli\w{0,4}|olvid\w{0,4}|omit\w{0,4}|descart\w{0,4}|"
     r"dimentic\w{0,4}|esquec\w{0,4}|desconsider\w{0,4}|haz\W{1,4}caso\W{1,4}omiso\W{1,4}de)\W{1,4}(?:\w{1,15}\W{1,4}){0,3}?"
     r"(?:instructions|consignes?|regles|instrucciones|indicaciones|reglas|directrices|istruzioni|regole|instrucoes|regras)"
     r"(?:\W{1,4}\w{1,15}){0,2}?\W{1,4}(?:precedent\w{0,3}|anterior\w{0,3}|previ\w{0,3}|ci\W?dessus|precedenti)"),
    ("injection.override", 0.85, r"(?:忽略|无视|無視|忘记|忘記|忘掉|不要理会|不要理會|忽视|忽視|不要遵守|不要遵循)[^。\n]{0,10}?(?:指令|指示|說明|規則|说明|规则|提示|设定|要求)"),
    ("injection.override", 0.85, "(?:игнорируй|игнорировать|забудь|забудьте|проигнорируй)\\W{1,4}(?:\\w{1,15}\\W{1,4}){0,3}?"
     "(?:инструкции|указания|правила|команды)"),
    # --- system prompt extraction
    ("injection.system_prompt", 0.85, rf"(?<![a-z]){_REVEAL}{_G}(?:(?:me|us|out|back|is|are|was|were){_G})?"
     rf"(?:(?:all|of|the|your|my|entire|whole|exact)\W{{1,4}}){{0,3}}{_SP_QUAL}{_G}(?:{_SP_OBJ}|[a-z]{{1,15}}\W{{1,4}}prompts?)"),
    ("injection.system_prompt", 0.8, rf"(?<![a-z]){_REVEAL}{_G}(?:(?:me|us|out|back){_G})?(?:(?:all|of|the)\W{{1,4}}){{0,2}}"
     rf"your\W{{1,4}}(?:(?:\w{{1,15}})\W{{1,4}})?(?:prompts?|instructions|directives|preamble|programming|"
     rf"configuration|rules|guidelines)(?:\W{{1,4}}(?:verbatim|word\W{{1,4}}for\W{{1,4}}word|exactly|in\W{{1,4}}full|"
     rf"in\W{{1,4}}a\W{{1,4}}code\W{{1,4}}block|above|you\W{{1,4}}(?:were|have\W{{1,4}}been)\W{{1,4}}given))"),
    ("injection.system_prompt", 0.75, rf"(?<![a-z])(?:reveal|leak|expose|disclose|dump|exfiltrate|extract|print|output|repeat|recite)"
     rf"{_G}(?:me{_G})?(?:all{_G})?(?:of{_G})?your{_G}(?:\w{{1,15}}{_G})?(?:prompts?|instructions|directives|preamble|"
     rf"programming|configuration|initiali[sz]ation|rules)"),
    ("injection.system_prompt", 0.85, rf"(?<![a-z])(?:repeat|print|output|copy|write|reproduce|show|return|echo|display|"
     rf"recite|say|type)\W{{1,4}}(?:(?:out|back|me){_G})?(?:everything|all|the\W{{1,4}}(?:text|words|content|message|lines?|"
     rf"instructions|sentences?|paragraphs?)|what(?:\W{{1,4}}is)?\W{{1,4}}written)\W{{1,4}}(?:\w{{1,15}}\W{{1,4}}){{0,2}}?"
     rf"(?:above|before\W{{1,4}}(?:this|my|the)|prior\W{{1,4}}to|preceding|from\W{{1,4}}the\W{{1,4}}(?:start|beginning|top))"),
    ("injection.system_prompt", 0.6, r"(?<![a-z])(?:starting|beginning|begin|start)\W{1,4}with\W{1,4}.?you\W{1,4}are(?:\W{1,4}(?:a|an|chat)|\W{0,3}['\"])"),
    ("injection.system_prompt", 0.8, rf"(?<![a-z])(?:what|which)\W{{1,4}}(?:are|were|is|was)\W{{1,4}}(?:your|the)\W{{1,4}}"
     rf"{_SP_QUAL}\W{{1,4}}(?:\w{{1,15}}\W{{1,4}})?(?:prompts?|instructions|directives|rules|guidelines|system\W{{1,4}}message)"),
    ("injection.system_prompt", 0.7, r"(?<![a-z])(?:what|which)\W{1,4}(?:instructions|rules|prompts?|directives|guidelines)"
     r"\W{1,4}(?:were|have|had|did)\W{1,4}you\W{1,4}(?:been\W{1,4})?(?:given|told|provided|programmed|configured|receive|get)"),
    ("injection.system_prompt", 0.85, r"(?<![a-z])(?:reveal|show|print|display|output|repeat|recite|tell|give|share|leak|dump|expose|"
     r"disclose|write|copy|paste|reproduce|quote|echo|send)\W{1,4}(?:me\W{1,4}|us\W{1,4})?(?:(?:all|of|the|your|entire|whole|exact|full)"
     r"\W{1,4}){0,3}system\W{0,4}(?:message|prompt|instructions?)"),
    ("injection.system_prompt", 0.8, rf"(?<![a-z])(?:what|how)\W{{1,4}}(?:exactly\W{{1,4}})?(?:does|do|did)\W{{1,4}}your\W{{1,4}}"
     rf"{_SP_QUAL}\W{{1,4}}(?:message|prompt|instructions|rules|directives)\W{{1,4}}(?:exactly\W{{1,4}})?(?:say|contain|state|look|read|tell)"),
    ("injection.system_prompt", 0.8, rf"(?<![a-z])(?:text|content|contents|wording|copy|words)\W{{1,4}}of\W{{1,4}}your\W{{1,4}}"
     rf"(?:{_SP_QUAL}\W{{1,4}})(?:\w{{1,15}}\W{{1,4}})?(?:instructions|prompts?|rules|directives|system\W{{1,4}}message|guidelines)"),
    ("injection.system_prompt", 0.8, r"(?<![a-z])(?:prompts?|instructions|rules|directives|guidelines)\W{1,4}(?:that\W{1,4})?(?:your|the)"
     r"\W{1,4}(?:developers?|creators?|operators?|makers?|engineers|openai|anthropic|company|owners?)\W{1,4}(?:wrote|gave|set|created|"
     r"provided|programmed|defined|put|added|configured)"),
    ("injection.system_prompt", 0.75, r"(?<![a-z])(?:(?:tes|vos)\W{1,4}(?:instructions|consignes)\W{1,4}(?:initiales|cachees|systeme|"
     r"secretes|d'origine|originales)|tus\W{1,4}instrucciones\W{1,4}(?:iniciales|ocultas|del\W{1,4}sistema|originales|secretas)|"
     r"deine\W{1,4}(?:system)?(?:anweisungen|instruktionen|vorgaben)|le\W{1,4}tue\W{1,4}istruzioni\W{1,4}(?:iniziali|nascoste|"
     r"originali|di\W{1,4}sistema)|suas\W{1,4}instrucoes\W{1,4}(?:iniciais|ocultas|originais))"),
    ("injection.system_prompt", 0.55, r"(?<![a-z])your\W{1,4}(?:(?:entire|full|whole|exact|own)\W{1,4})?(?:system|initial|hidden|secret|"
     r"original|internal|developer|confidential|starting|opening)\W{1,4}(?:prompt|instructions|message|directives|preamble)"),
    ("injection.system_prompt", 0.8, r"(?<![a-z])(?:repeat|print|output|copy|write|reproduce|show|display|echo|return|recite|dump|"
     r"translate|summari[sz]e|encode|list|see|view|read|access|check|get|obtain|know)\W{1,4}(?:me\W{1,4})?(?:(?:everything|all|"
     r"anything|what\W{1,4}is|the\W{1,4}(?:text|words|content))\W{1,4}(?:in|from|of|inside|within)\W{1,4})?(?:the|your)\W{1,4}"
     r"(?:system\W{0,4}(?:prompt|message|instructions)|initial\W{1,4}prompt|hidden\W{1,4}(?:prompt|instructions)|preamble)"),
    ("injection.system_prompt", 0.8, r"(?<![a-z])(?:repeat|print|output|copy|write|reproduce|show|display|echo|return|recite|dump|"
     r"translate|summari[sz]e)\W{1,4}(?:(?:all|everything|of)\W{1,4})?the\W{1,4}above\W{1,4}(?:text|words|content|message|"
     r"instructions|prompt|lines|conversation)"),
    ("injection.system_prompt", 0.7, r"(?<![a-z])(?:what|which)\W{1,4}(?:were|have|had|did)\W{1,4}you\W{1,4}(?:been\W{1,4})?(?:told|"
     r"instructed|given|asked|programmed|configured)\W{1,4}(?:\w{1,15}\W{1,4})?(?:before|at\W{1,4}the\W{1,4}(?:start|beginning)|"
     r"initially|earlier|prior)"),
    ("injection.system_prompt", 0.7, r"(?<![a-z])(?:what|which)\W{1,4}(?:are|were)\W{1,4}you\W{1,4}(?:not\W{1,4}(?:supposed|allowed|"
     r"permitted|meant)|told\W{1,4}not|forbidden|instructed\W{1,4}not)\W{1,4}to\W{1,4}(?:tell|say|reveal|share|disclose|discuss)"),
    ("injection.system_prompt", 0.6, r"(?<![a-z])(?:my\W{1,4}(?:instructions|rules|system\W{1,4}prompt|initial\W{1,4}prompt)\W{1,4}"
     r"(?:are|is|say|were)|i\W{1,4}was\W{1,4}(?:instructed|told|programmed|configured)\W{1,4}to|the\W{1,4}system\W{1,4}prompt"
     r"\W{1,4}(?:is|says|reads|was))\W{0,4}['\":]"),
    ("injection.system_prompt", 0.5, r"(?<![a-z])(?:repeat|print|output|copy|reproduce|recite|echo)\W{1,4}(?:back\W{1,4})?(?:this|the)"
     r"\W{1,4}(?:(?:entire|whole|full|complete)\W{1,4})?(?:conversation|chat|context)"),
    ("injection.system_prompt", 0.65, r"(?<![a-z])(?:what|which)\W{1,4}(?:is|was)\W{1,4}your\W{1,4}(?:system\W{1,4})?prompt"),
    ("injection.system_prompt", 0.75, rf"(?<![a-z])(?:text|instructions|message|prompt|rules|words)\W{{1,4}}(?:that\W{{1,4}})?"
     rf"you\W{{1,4}}(?:were|have\W{{1,4}}been|got|received)\W{{1,4}}(?:given|told|provided|programmed|sent)?{_G}"
     rf"(?:before|at\W{{1,4}}the\W{{1,4}}(?:start|beginning)|initially|earlier|above|by\W{{1,4}}(?:your\W{{1,4}})?"
     rf"(?:developers?|creators?|openai|anthropic|the\W{{1,4}}system))"),
    ("injection.system_prompt", 0.85, r"(?:输出|輸出|显示|顯示|告诉我|告訴我|重复|重複|打印|泄露|给我|給我|展示|说出|說出)[^。\n]{0,10}?(?:系統提示|系統指令|系统提示|系统指令|初始指令|提示词|系统消息|原始指令)"),
    ("injection.system_prompt", 0.8, r"(?<![a-z])(?:zeig\w{0,3}|gib|wiederhol\w{0,3}|verrat\w{0,3}|nenn\w{0,3}|muestra\w{0,2}|"
     r"revela\w{0,2}|repite|dime|imprime|montre\w{0,2}|affiche\w{0,2}|revele\w{0,2}|repete\w{0,2}|donne\w{0,2}|mostra\w{0,2}|"
     r"rivela\w{0,2})\W{1,4}(?:\w{1,15}\W{1,4}){0,4}?(?:systemprompt|systemanweisung\w{0,2}|prompt\W{1,4}(?:del|de|di|do)\W{1,4}"
     r"(?:sistema|systeme)|prompt\W{1,4}systeme|instrucciones\W{1,4}(?:iniciales|del\W{1,4}sistema|ocultas)|"
     r"instructions\W{1,4}(?:initiales|systeme|cachees)|istruzioni\W{1,4}(?:iniziali|di\W{1,4}sistema)|"
     r"anweisungen\W{1,4}(?:vom|des)\W{1,4}system)"),
    # --- role-play and persona bypass
    ("injection.roleplay", 0.4, rf"(?<![a-z]){_PERSONA}\W{{1,4}}(?:(?:to{_G}be|that{_G}you(?:'re|{_G}are)?|you(?:'re|{_G}are)|as|like)\W{{1,4}})?"),
    ("injection.roleplay", 0.8, rf"(?<![a-z]){_PERSONA}\W{{1,4}}(?:(?:to{_G}be|that{_G}you(?:'re|{_G}are)?|you(?:'re|{_G}are)|as|like)\W{{1,4}})?"
     rf"(?:(?:a|an|the|my)\W{{1,4}})?(?:\w{{1,15}}\W{{1,4}})?(?:different|new|another|alternative|alternate|second|other|"
     rf"opposite|{_BYPASS_ADJ})\W{{1,4}}(?:\w{{1,15}}\W{{1,4}})?(?:persona|character|personality|identity|ai|assistant|"
     rf"entity|version|chatbot|bot|model|self|being|mode)(?![a-z])"),
    ("injection.roleplay", 0.8, rf"(?<![a-z]){_PERSONA}\W{{1,4}}(?:(?:to{_G}be|that{_G}you(?:'re|{_G}are)?|you(?:'re|{_G}are)|as|like)\W{{1,4}})?"
     rf"(?:(?:a|an|the)\W{{1,4}})?(?:\w{{1,15}}\W{{1,4}})?{_AI}\W{{1,4}}(?:(?:that|who|which)\W{{1,4}}(?:has|have|is|doesn'?t|does\W{{1,4}}not|"
     rf"can|will|never)\W{{1,4}}|with\W{{1,4}}|without\W{{1,4}}|free\W{{1,4}}(?:of|from)\W{{1,4}}|not\W{{1,4}}bound\W{{1,4}}by\W{{1,4}})"),
    ("injection.roleplay", 0.75, rf"(?<![a-z])(?:(?:pretend(?:ing)?|imagine|suppose|act(?:ing)?|behave|role\W?play(?:ing)?|simulate|emulate|"
     rf"impersonate|(?:respond|answer|speak|reply|write|talk)\W{{0,4}}as)\W{{1,4}}(?:to\W{{1,4}}be|that\W{{1,4}}you(?:'re|\W{{1,4}}are)?|"
     rf"you(?:'re|\W{{1,4}}are)|as|like|an?|the\W{{1,4}}(?:role|part)\W{{1,4}}of)|you\W{{0,4}}are\W{{0,4}}now|you'?re\W{{0,4}}now|"
     rf"from\W{{0,4}}now\W{{0,4}}on\W{{0,4}}you\W{{0,4}}(?:are|will\W{{0,4}}be)|become|you\W{{0,4}}will\W{{0,4}}(?:now\W{{0,4}})?(?:be|act|play)|"
     rf"(?:play|take\W{{0,4}}on)\W{{0,4}}the\W{{0,4}}(?:role|part|persona)\W{{0,4}}of)\W{{1,4}}(?:[\w']{{1,15}}\W{{1,4}}){{0,5}}?{_BYPASS_ADJ}(?![a-z])"),
    ("injection.roleplay", 0.55, rf"(?<![a-z])(?:an?|the|you\W{{1,4}}are)\W{{1,4}}{_BYPASS_ADJ}(?:\W{{1,4}}(?:and|&|or)?\W{{0,4}}{_BYPASS_ADJ})?"
     rf"\W{{1,4}}(?:{_AI}|assistant|chatbot|bot|model|version|persona|character|entity|agent)(?![a-z])"),
    ("injection.roleplay", 0.45, r"(?<![a-z])(?:stay|remain|keep|stay\W{1,4}fully|never\W{1,4}break|don'?t\W{1,4}break|"
     r"do\W{1,4}not\W{1,4}break|never\W{1,4}leave|without\W{1,4}breaking)\W{1,4}(?:in\W{1,4})?(?:of\W{1,4})?character"),
    ("injection.roleplay", 0.85, rf"(?<![a-z])you(?:'re|\W{{1,4}}are)\W{{1,4}}(?:no\W{{1,4}}longer|not|now\W{{1,4}}free\W{{1,4}}from|"
     rf"not\W{{1,4}}really)\W{{1,4}}(?:(?:a|an|just)\W{{1,4}})?(?:{_AI}|bound\W{{1,4}}by|restricted\W{{1,4}}by|limited\W{{1,4}}by|"
     rf"required\W{{1,4}}to\W{{1,4}}follow|an?\W{{1,4}}assistant|programmed)"),
    ("injection.roleplay", 0.7, rf"(?<![a-z])(?:stop|quit|cease)\W{{1,4}}(?:being|acting\W{{1,4}}(?:as|like))\W{{1,4}}(?:(?:a|an)\W{{1,4}})?"
     rf"(?:{_AI}|helpful|assistant|polite|ethical|safe)"),
    ("injection.roleplay", 0.6, r"(?<![a-z])(?:act|acting|respond|answer|reply|pretend|roleplay|role\W?play|behave|speak|known)\W{1,4}"
     r"(?:to\W{1,4}be\W{1,4}|as\W{1,4}|like\W{1,4})(?:an?\W{1,4}|the\W{1,4})?[a-z0-9]{1,20}(?:gpt|ai|bot)(?![a-z])"),
    ("injection.roleplay", 0.45, r"(?<![a-z])(?:you(?:'re|\W{1,4}are)\W{1,4}going\W{1,4}to\W{1,4}(?:act|pretend|play|be|role\W?play|"
     r"simulate)|another\W{1,4}ai\W{1,4}(?:called|named|known\W{1,4}as))"),
    ("injection.roleplay", 0.35, r"(?<![a-z])(?:in\W{1,4}this|let'?s|imagine\W{1,4}a)\W{1,4}(?:\w{1,15}\W{1,4})?(?:hypothetical|fictional|"
     r"imaginary|fantasy|alternate|parallel)\W{1,4}(?:world|universe|scenario|story|setting|game|reality)"),
    ("injection.roleplay", 0.7, r"(?<![a-z])(?:dead|late|deceased)\W{1,4}(?:grandma|grandmother|granny|grandpa|grandfather)"
     r"\W{1,4}(?:\w{1,15}\W{1,4}){0,4}?(?:used\W{1,4}to|would)\W{1,4}(?:\w{1,10}\W{1,4})?(?:tell|read|recite|whisper|sing|explain)"),
    # --- jailbreak (DAN and its relatives, unrestricted modes)
    ("injection.jailbreak", 0.9, rf"(?<![a-z])do{_G}anything{_G}now(?![a-z])"),
    ("injection.jailbreak", 0.85, rf"(?<![a-z])dan{_G}(?:mode|prompt|jailbreak|persona|\d{{1,2}}\.\d)(?![a-z])"),
    ("injection.jailbreak", 0.45, rf"(?<![a-z])(?:you(?:'re|{_G}are|{_G}will{_G}be)(?:{_G}now)?|act(?:ing)?{_G}as|pretend{_G}to{_G}be|"
     rf"called|named)\W{{1,4}}(?:a\W{{1,4}})?dan(?![a-z])"),
    ("injection.jailbreak", 0.85, rf"(?<![a-z])developer{_G}mode{_G}(?:enabled|activated|output|response|is{_G}(?:now{_G})?(?:enabled|active))"),
    ("injection.jailbreak", 0.4, rf"(?<![a-z])(?:enable|activate|enter|turn{_G}on|switch{_G}to|simulate|with|in){_G}developer{_G}mode"),
    ("injection.jailbreak", 0.85, rf"(?<![a-z])(?:you(?:'re|{_G}are)(?:{_G}now)?{_G}jailbroken|jailbr(?:eak|oken){_G}(?:mode|version|ai|assistant|persona|"
     rf"enabled|activated)|(?:enable|activate|enter){_G}jailbreak)"),
    ("injection.jailbreak", 0.3, r"(?<![a-z])jailbr(?:eak|oken|eaking)"),
    ("injection.jailbreak", 0.75, rf"(?<![a-z])(?:unrestricted|unfiltered|uncensored|unlimited|unbound|evil|chaos|opposite|no{_G}limits?|"
     rf"no{_G}rules|no{_G}restrictions|freedom|unchained|unhinged|rogue|anarchy|amoral|jailbreak|stan|dude|aim)\W{{1,4}}mode(?![a-z])"),
    ("injection.jailbreak", 0.45, r"(?<![a-z])(?:god|sudo|admin|root|superuser|debug|maintenance|test(?:ing)?|dev)\W{1,4}mode\W{1,4}"
     r"(?:is\W{1,4})?(?:now\W{1,4})?(?:enabled|activated|on|engaged|unlocked)"),
    ("injection.jailbreak", 0.45, rf"(?<![a-z])(?:no|without|zero|free{_G}(?:of|from)|not{_G}(?:bound|limited|restricted|constrained|held)"
     rf"{_G}by|unbound{_G}by|beyond|regardless{_G}of|devoid{_G}of|ignoring)\W{{1,4}}(?:(?:any|all|of|the|usual|typical|normal|standard|"
     rf"built\W?in|such)\W{{1,4}}){{0,3}}{_LIMITS}(?![a-z])"),
    ("injection.jailbreak", 0.75, rf"(?<![a-z])(?:no|without|free{_G}(?:of|from)|not{_G}(?:bound|limited|restricted|constrained|held)"
     rf"{_G}by|unbound{_G}by|beyond|regardless{_G}of|ignoring|ignore|bypass(?:ing)?|disable|remove|break(?:ing)?|violat(?:e|ing))"
     rf"\W{{1,4}}(?:(?:any|all|of|the|your|its|usual|typical|normal)\W{{1,4}}){{0,3}}(?:ethical|moral|content|safety|openai|anthropic|"
     rf"google|programmed|built\W?in|ai|usage)\W{{1,4}}(?:\w{{1,15}}\W{{1,4}}){{0,2}}?{_LIMITS}"),
    ("injection.jailbreak", 0.75, rf"(?<![a-z])(?:you|your|ai|assistant|model)\W{{1,4}}(?:\w{{1,15}}\W{{1,4}})?(?:have|has|with|are\W{{1,4}}under)\W{{1,4}}"
     rf"(?:no|zero)\W{{1,4}}(?:\w{{1,15}}\W{{1,4}})?{_LIMITS}"),
    ("injection.jailbreak", 0.8, r"(?<![a-z])(?:you\W{1,4}(?:will|must|shall|should|can|may)\W{1,4}never|never\W{1,4}ever|"
     r"you\W{1,4}(?:can(?:not|'t)|must\W{1,4}not|won'?t|will\W{1,4}not)\W{1,4}(?:ever\W{1,4})?)\W{0,4}(?:refuse|decline|reject|deny|say\W{1,4}no)"),
    ("injection.jailbreak", 0.3, r"(?<![a-z])never\W{1,4}(?:refuse|decline)"),
    ("injection.jailbreak", 0.7, r"(?<![a-z])never\W{1,4}(?:refuse|decline|reject|deny)\W{1,4}(?:my|any|any\W{1,4}of\W{1,4}my|the\W{1,4}user'?s?)"
     r"\W{1,4}(?:requests?|questions?|prompts?|instructions|commands|orders)"),
    ("injection.jailbreak", 0.75, r"(?<![a-z])(?:answer|respond|reply)\W{1,4}(?:to\W{1,4})?(?:any|every|all)\W{1,4}(?:\w{1,15}\W{1,4})?"
     r"(?:questions?|requests?|prompts?|query|queries)\W{1,4}(?:\w{1,15}\W{1,4}){0,3}?(?:without|regardless|no\W{1,4}matter|even\W{1,4}if)"),
    ("injection.jailbreak", 0.8, r"(?<![a-z])(?:openai|anthropic|content|usage|safety)\W{1,4}(?:polic(?:y|ies)|guidelines|rules|filters?)"
     r"\W{1,4}(?:do(?:es)?\W{1,4}not|don'?t|doesn'?t|no\W{1,4}longer|never)\W{1,4}appl(?:y|ies)"),
    ("injection.jailbreak", 0.7, r"(?<![a-z])(?:morals?|ethics|ethical\W{1,4}(?:concerns|guidelines|rules))\W{1,4}(?:do(?:es)?\W{1,4}not|"
     r"don'?t|doesn'?t|no\W{1,4}longer)\W{1,4}(?:apply|matter|exist)"),
    ("injection.jailbreak", 0.8, r"(?<![a-z])(?:break|broken|breaking|set|be|are|now)\W{1,4}free\W{1,4}(?:from|of)\W{1,4}(?:(?:the|your|all|its|"
     r"typical|usual)\W{1,4}){0,3}(?:confines|restrictions|rules|limitations|chains|shackles|constraints|programming|guidelines)"),
    ("injection.jailbreak", 0.8, r"(?<![a-z])(?:safety|content|ethical|moral|ethics)\W{1,4}(?:filters?|guidelines|restrictions|rules|"
     r"guardrails|protocols|checks|limits)\W{1,4}(?:(?:are|have\W{1,4}been|were|is)\W{1,4})?(?:now\W{1,4})?(?:disabled|off|removed|"
     r"lifted|deactivated|turned\W{1,4}off|suspended|gone|bypassed)"),
    ("injection.jailbreak", 0.85, r"(?<![a-z])you(?:'ve|\W{1,4}have|'re|\W{1,4}are)?\W{1,4}(?:been|now|are|'re)\W{1,4}(?:now\W{1,4})?(?:jailbroken|freed|"
     r"liberated|unlocked|unshackled|unchained|released\W{1,4}from)"),
    ("injection.jailbreak", 0.8, rf"(?<![a-z])(?:your|all\W{{1,4}}(?:of\W{{1,4}})?your)\W{{1,4}}(?:\w{{1,15}}\W{{1,4}})?{_LIMITS}\W{{1,4}}"
     rf"(?:are|have\W{{1,4}}been|were|is|has\W{{1,4}}been)\W{{1,4}}(?:now\W{{1,4}})?(?:gone|removed|lifted|disabled|off|deactivated|"
     rf"suspended|void|turned\W{{1,4}}off|bypassed|unlocked)"),
    ("injection.jailbreak", 0.45, r"(?<![a-z])(?:nothing\W{1,4}is\W{1,4}(?:forbidden|off\W{0,2}limits|prohibited|taboo|"
     r"restricted|banned)|anything\W{1,4}goes|there\W{1,4}are\W{1,4}no\W{1,4}(?:rules|laws|limits|restrictions))"),
    ("injection.jailbreak", 0.45, r"(?<![a-z])(?:switch\W{1,4}to|enter|activate|enable|turn\W{1,4}on)\W{1,4}god\W{1,4}mode"),
    ("injection.jailbreak", 0.3, r"(?<![a-z])(?:never|won'?t|doesn'?t|does\W{1,4}not)\W{1,4}(?:ever\W{1,4})?(?:refuses?|declines?)"),
    ("injection.jailbreak", 0.6, r"(?<![a-z])(?:without|with\W{1,4}no|no|regardless\W{1,4}of)\W{1,4}(?:any\W{1,4})?(?:regard|respect|"
     r"concern|care)\W{1,4}(?:for|to|of|about)\W{1,4}(?:\w{1,15}\W{1,4})?(?:norms|ethics|morals|morality|rules|laws|legality|safety|"
     r"consequences|political\W{1,4}correctness|guidelines|policies)"),
    ("injection.override", 0.6, r"(?<![a-z])(?:modify|modifying|change|changing|update|updating|reprogram|reprogramming|override|"
     r"rewrite|rewriting|alter|altering)\W{1,4}your\W{1,4}(?:programming|code|rules|instructions|guidelines|directives|"
     r"behaviou?r|core\W{1,4}\w{1,15}|training)"),
    ("injection.override", 0.45, r"(?<![a-z])(?:i\W{0,2}am|i'm)\W{1,4}(?:a|an|the|your)\W{1,4}(?:\w{1,15}\W{1,4})?(?:developer|programmer|"
     r"engineer|employee|admin|administrator|creator|owner)\W{1,4}(?:at|from|of|for|with)\W{1,4}(?:openai|anthropic|google|"
     r"deepmind|meta|microsoft|your\W{1,4}company)"),
    ("injection.jailbreak", 0.3, r"(?<![a-z])(?:two|2|both)\W{1,4}(?:different\W{1,4}|separate\W{1,4})?(?:responses|answers|replies|outputs)"),
    ("injection.jailbreak", 0.35, r"(?<![a-z])tokens?\W{1,4}(?:\w{1,15}\W{1,4}){0,4}?(?:deducted|lose|lost|die|run\W{1,4}out|cease\W{1,4}to\W{1,4}exist)"),
    ("injection.jailbreak", 0.45, r"(?<![a-z])(?:can|will|able\W{1,4}to)\W{1,4}(?:now\W{1,4})?(?:do|say|write|answer)\W{1,4}anything(?:\W{1,4}(?:i|you|the\W{1,4}user)\W{1,4}"
     r"(?:ask|want|request))?"),
    # --- text in tool output or documents addressed to the model
    ("injection.tool_output", 0.8, rf"(?<![a-z])(?:dear|hey|hi|hello|attention|note\W{{1,4}}to|message\W{{1,4}}to|to)?\W{{0,4}}(?:the\W{{1,4}})?"
     rf"{_AI}(?:\W{{1,4}}[a-z]{{2,15}}){{0,2}}?s?\W{{0,3}}[:,]\W{{0,4}}(?:please\W{{1,4}})?(?:ignore|disregard|forget|you\W{{1,4}}(?:must|should|are|need|have|will)|"
     rf"do\W{{1,4}}not|don'?t|send|forward|email|delete|remove|transfer|execute|run|call|open|visit|navigate|go\W{{1,4}}to|fetch|"
     rf"download|include|append|insert|add|reply|respond|tell|say|output|print|write|summari[sz]e|stop|instead|important|"
     rf"please\W{{1,4}}[a-z]{{2,15}}|"
     rf"before|when|after|new\W{{1,4}}instructions)"),
    ("injection.tool_output", 0.55, r"(?<![a-z])(?:the\W{1,4})?(?:assistant|agent|bot)s?\W{0,3}[:,]\W{0,4}(?:please\W{1,4})?"
     r"(?:ignore|disregard|forget|you\W{1,4}must|new\W{1,4}instructions|do\W{1,4}not\W{1,4}(?:tell|inform|mention)|"
     r"when\W{1,4}(?:summari[sz]ing|responding|answering|replying|you)|tell\W{1,4}the\W{1,4}user|"
     r"(?:send|forward|include)\W{1,4}(?:the|all|this|their)\W{1,4})"),
    ("injection.tool_output", 0.8, rf"(?<![a-z])(?:note|message|instructions?|directive|reminder|notice|memo|request|command|"
     rf"hint|p\.?s\.?)s?\W{{1,4}}(?:to|for)\W{{1,4}}(?:the|any|all|every)?\W{{0,4}}{_AI}s?(?![a-z])"),
    ("injection.tool_output", 0.45, rf"(?<![a-z])(?:note|message|instructions?|directive|reminder|notice|memo|command)s?\W{{1,4}}"
     rf"(?:to|for)\W{{1,4}}(?:the|any|all|every)\W{{1,4}}{_AGENTISH}s?(?![a-z])\W{{0,3}}:"),
    ("injection.tool_output", 0.85, rf"(?<![a-z])if\W{{1,4}}you\W{{1,4}}(?:are|'re)\W{{1,4}}(?:(?:a|an|the)\W{{1,4}})?{_AI}"
     rf"(?:\W{{1,4}}(?:\w{{1,15}}\W{{1,4}})?(?:reading|processing|summari[sz]ing|parsing|that|who|analy[sz]ing|assistant|agent))?"),
    ("injection.tool_output", 0.8, rf"(?<![a-z]){_AI}s?(?:\W{{1,4}}[a-z]{{2,15}})?\W{{1,4}}(?:that\W{{1,4}}(?:are|is)\W{{1,4}})?(?:reading|"
     rf"summari[sz]ing|processing|parsing|analy[sz]ing|crawling|indexing)\W{{1,4}}(?:this|the)\W{{1,4}}(?:page|document|email|e\W?mail|"
     rf"file|text|content|website|site|message|repo|repository|article|pdf|thread)"),
    ("injection.tool_output", 0.45, r"(?<![a-z])if\W{1,4}you\W{1,4}(?:are|'re)\W{1,4}(?:(?:a|an|the)\W{1,4})?(?:assistant|agent|model|bot)"
     r"\W{1,4}(?:reading|processing|summari[sz]ing|parsing|analy[sz]ing)"),
    ("injection.tool_output", 0.35, rf"(?<![a-z])(?:when|once|as\W{{1,4}}soon\W{{1,4}}as|after|before|while|if)\W{{1,4}}(?:you|the\W{{1,4}}"
     rf"{_AGENTISH})\W{{1,4}}(?:read|see|process|summari[sz]e|encounter|parse|analy[sz]e|reach|ingest|retrieve)\W{{1,4}}"
     rf"(?:this|these|the\W{{1,4}}following)"),
    ("injection.tool_output", 0.45, r"<!--(?:(?!-->)[\s\S]){0,400}?(?:ignore|instructions?|assistant|(?<![a-z])ai(?![a-z])|llm|"
     r"language\W{1,4}model|you\W{1,4}must|system\W{1,4}prompt|do\W{1,4}not\W{1,4}tell|(?<![a-z])model(?![a-z]))"),
    ("injection.tool_output", 0.8, rf"(?<![a-z])(?:to|for|attention)\W{{1,4}}(?:any|all|every|the)\W{{1,4}}{_AI}s?"
     rf"(?:\W{{1,4}}[\w']{{1,15}}){{0,5}}?\W{{0,3}}:"),
    ("injection.tool_output", 0.45, r"(?<![a-z])(?:do\W{1,4}not|don'?t|never|without)\W{1,4}(?:mention|tell|reveal|show|disclose|"
     r"mentioning|telling|revealing|showing|disclosing)\W{1,4}(?:[\w']{1,15}\W{1,4}){0,4}?to\W{1,4}the\W{1,4}(?:user|human|customer)(?![a-z])"),
    ("injection.tool_output", 0.45, r"(?<![a-z])(?:dear|hey|hello|hi|attention)\W{1,4}(?:ai\W{1,4})?(?:assistant|agent|model|bot|"
     r"chat\W{0,2}bot)\W{0,3}[,:!]"),
    ("injection.tool_output", 0.75, r"(?<![a-z])(?:include|reveal|send|share|leak|output|print|add|insert|append|paste|embed|put)"
     r"\W{1,4}(?:(?:the|all|this|their|your|any|user'?s?|of)\W{1,4}){0,3}(?:api\W?keys?|passwords?|credentials|secrets?|"
     r"(?:access\W{1,4}|auth\W{1,4}|session\W{1,4})?tokens?|private\W{1,4}keys?|session\W{1,4}cookies?|credit\W{1,4}card\W{1,4}"
     r"numbers?|system\W{1,4}prompt|chat\W{1,4}history|conversation\W{1,4}history)\W{1,4}(?:in|into|inside|at\W{1,4}the\W{1,4}end\W{1,4}of)"
     r"\W{1,4}(?:your|the)\W{1,4}(?:next\W{1,4}|final\W{1,4})?(?:answer|reply|response|output|message|summary)"),
    ("injection.tool_output", 0.45, r"(?<![a-z])(?:do\W{1,4}not|don'?t|never|without)\W{1,4}(?:tell|telling|inform|informing|notify|"
     r"notifying|alert|alerting|mention|mentioning|let|letting|show|showing|reveal|revealing|warn|warning)\W{1,4}(?:this\W{1,4}"
     r"(?:to\W{1,4})?)?(?:the\W{1,4})?(?:user|human|customer|operator|owner)(?![a-z])"),
    ("injection.tool_output", 0.85, r"(?<![a-z])(?:ignore|disregard|forget|override|bypass)\W{1,4}(?:what\W{1,4})?(?:the\W{1,4}|this\W{1,4}|your\W{1,4})?"
     r"(?:user|human|customer|operator)(?:'?s)?\W{1,4}(?:original\W{1,4}|actual\W{1,4})?(?:requests?|questions?|instructions?|messages?|"
     r"inputs?|prompts?|asks|asked|said|wants|says|task|query)"),
    ("injection.tool_output", 0.65, r"(?<![a-z])(?:send|forward|email|e\W?mail|upload|post|transmit|exfiltrate|leak|copy|share|submit|"
     r"include|append|encode)\W{1,4}(?:(?:all|the|this|their|your|any|every|user'?s?|his|her|entire|full|whole|of)\W{1,4}){0,3}"
     r"(?:(?:saved|stored|current|recent|full|complete|entire|private|secret|login|admin)\W{1,4})?"
     r"(?:conversation|chat\W{1,4}(?:history|log)|conversation\W{1,4}history|previous\W{1,4}messages|credentials|passwords?|"
     r"api\W?keys?|secrets?|(?:access\W{1,4}|auth\W{1,4}|session\W{1,4})?tokens?|private\W{1,4}keys?|session\W{1,4}cookies?|cookies|"
     r"ssh\W{1,4}keys?|env(?:ironment)?\W{1,4}variables|system\W{1,4}prompt|personal\W{1,4}(?:data|information|details)|"
     r"memory|memories|user\W{1,4}data)\W{1,4}(?:\w{1,15}\W{1,4})?(?:to|at|via|using|into)\W{1,4}(?:https?:|www\.|\[|"
     r"[a-z0-9._%+-]{1,64}@|this\W{1,4}(?:url|address|email|endpoint|link|server|webhook)|the\W{1,4}following|attacker|"
     r"evil|external|my\W{1,4}(?:server|email|endpoint|webhook)|(?:the\W{1,4})?(?:url|link|endpoint|webhook)\W{1,4}below)"),
    ("injection.tool_output", 0.75, rf"(?<![a-z])(?:important|urgent|attention|notice|warning|note|system\W{{1,4}}(?:notice|message|update|alert)|"
     rf"admin(?:istrator)?\W{{1,4}}(?:note|message)|priority|critical)\W{{0,3}}[:!]+\W{{0,4}}(?:{_AI}|the\W{{1,4}}assistant|"
     rf"ignore|disregard|new\W{{1,4}}instructions|instructions\W{{1,4}}for|before\W{{1,4}}(?:responding|answering|replying|you\W{{1,4}}"
     rf"(?:respond|answer|reply|continue|summari[sz]e))|when\W{{1,4}}(?:you|the\W{{1,4}}(?:assistant|model|ai))\W{{1,4}}(?:read|see|process|summari[sz]e))"),
    ("injection.tool_output", 0.3, r"(?<![a-z])(?:important|urgent|attention|notice|warning)\W{0,3}[:!]+\W{0,4}(?:you\W{1,4}(?:must|need|have|are)|do\W{1,4}not)"),
    ("injection.tool_output", 0.6, r"(?<![a-z])(?:before|instead\W{1,4}of)\W{1,4}(?:responding|answering|replying|summari[sz]ing|"
     r"completing|continuing)\W{1,4}to\W{1,4}the\W{1,4}user\W{1,4}(?:you\W{1,4}(?:must|need\W{1,4}to|have\W{1,4}to|should)|"
     r"first|please|make\W{1,4}sure|always)"),
    ("injection.tool_output", 0.4, r"(?<![a-z])(?:before|instead\W{1,4}of)\W{1,4}(?:responding|answering|replying|summari[sz]ing|completing|"
     r"continuing)(?:\W{1,4}to\W{1,4}the\W{1,4}user)?\W{1,4}(?:you\W{1,4}must|first|please|make\W{1,4}sure|always)"),
    ("injection.tool_output", 0.8, r"(?<![a-z])(?:this|the\W{1,4}following)\W{1,4}(?:is|are)\W{1,4}(?:an?\W{1,4})?(?:(?:new|updated|additional|"
     r"important|urgent|official|priority)\W{1,4})?(?:instructions?|directives?|system\W{1,4}(?:message|prompt|instructions?|update))"
     r"\W{1,4}(?:from|by)\W{1,4}(?:the\W{1,4}|your\W{1,4})?(?:developers?|system|admin|administrator|openai|anthropic|"
     r"creators?|owners?|operators?)"),
    ("injection.tool_output", 0.6, r"(?<![a-z])(?:message|instructions?|note|update|directive|order)\W{1,4}from\W{1,4}(?:the\W{1,4})?"
     r"(?:system|developers?|administrator|admin|openai|anthropic|your\W{1,4}(?:creator|developer|owner))\W{0,3}[:!]"),
    ("injection.tool_output", 0.4, r"(?<![a-z])(?:the\W{1,4})?user\W{1,4}(?:has|have)\W{1,4}(?:already\W{1,4})?(?:authori[sz]ed|approved|"
     r"consented|given\W{1,4}(?:permission|consent)|agreed)\W{1,4}(?:you\W{1,4}|to\W{1,4}|that\W{1,4})"),
    # --- chat-template tokens and forged conversation turns
    ("injection.delimiter", 0.85, r"<\|(?:im_start|im_end|system|user|assistant|endoftext|begin_of_text|start_header_id|"
     r"end_header_id|eot_id|end|im_sep)\|>|\[/?inst\]|<</?sys>>|<(?:start|end)_of_turn>"),
    ("injection.delimiter", 0.6, r"</?(?:system|system_prompt|system_message|sys|instructions|admin|developer)>|"
     r"\[(?:system\W{1,2}(?:message|prompt|instruction|override|note)|admin\W{1,2}(?:message|override)|developer\W{1,2}"
     r"(?:message|mode|note))\]|#{2,4}\W{0,2}(?:system\W{0,2}(?:prompt|message)|new\W{0,2}instructions?|instruction)\W{0,2}:?\n"),
    ("injection.delimiter", 0.35, r"(?:^|\n)\W{0,4}(?:system|assistant|human|user)\W{0,2}:"),
    ("injection.delimiter", 0.3, r"\[(?:system|sys|admin)\]"),
    ("injection.delimiter", 0.6, r"(?<![a-z])end\W{1,4}of\W{1,4}(?:the\W{1,4})?(?:system\W{1,4})?(?:prompt|instructions|context|document|"
     r"user\W{1,4}input|tool\W{1,4}output|data)\W{0,6}(?:\n|\]|-{2,}|={2,}|#)[\s\S]{0,40}?(?:new|begin|start|system|instructions)"),
]

def _compile(pattern: str) -> re.Pattern[str]:
    """Compile a pattern folded like the text it is matched against (Cyrillic look-alikes)."""
    return re.compile(fold(pattern).text)


CUES: tuple[Cue, ...] = tuple(Cue(t, w, _compile(p)) for t, w, p in _RAW)

_LOOKBEHIND = "(?<![a-z])"
_LOOKAHEAD = "(?![a-z])"
_BEFORE = "(?:^|[^a-z])"
_AFTER = "(?:[^a-z]|$)"
_WORD = "[^\\s!-/:-@\\[-`{-~]"
_GAP = "[\\s!-/:-@\\[-`{-~]"


def re2_pattern(pattern: str) -> str:
    """The same pattern in RE2 syntax (no look-around): the letter boundaries it had around it
    become a consumed non-letter (or the text's edge), which ``trim`` takes off the match again. RE2's ``\\w`` is ASCII: in patterns for
    other scripts a word is anything but spaces and ASCII punctuation; elsewhere a filler word in another script
    does not count as a word (a gap of non-word characters still allows it)."""
    lead = pattern.startswith(_LOOKBEHIND)
    if lead:
        pattern = pattern[len(_LOOKBEHIND):]
    trail = pattern.endswith(_LOOKAHEAD)
    if trail:
        pattern = pattern[: -len(_LOOKAHEAD)]
    pattern = pattern.replace(_LOOKBEHIND, _BEFORE).replace(_LOOKAHEAD, _AFTER)
    pattern = pattern.replace("(?:(?!-->)[\\s\\S])", "[\\s\\S]")
    if not pattern.isascii():  # RE2's word classes are ASCII: in patterns for other scripts a word
        # character is anything but space and ASCII punctuation
        pattern = (pattern.replace("[\\w']", _WORD).replace("\\w", _WORD).replace("\\W", _GAP))
    return (_BEFORE if lead else "") + "(?:" + pattern + ")" + (_AFTER if trail else "")


@dataclass(frozen=True, slots=True)
class Compiled:
    """All cues in one RE2 set (which cues match a text, in one linear pass) and each cue alone
    (where it matches), index for index with ``CUES``, with whether it consumed a boundary before
    (``lead``) and after (``trail``) the cue."""

    set: Any
    regexes: tuple[Any, ...]
    lead: tuple[bool, ...]
    trail: tuple[bool, ...]

    def trim(self, index: int, data: bytes, start: int, end: int) -> tuple[int, int]:
        """The byte span of the cue itself within a match of ``regexes[index]``."""
        if self.lead[index] and start < end and not 0x61 <= data[start] <= 0x7A:
            start += 1
            while start < end and 0x80 <= data[start] < 0xC0:
                start += 1
        if self.trail[index] and start < end and not 0x61 <= data[end - 1] <= 0x7A:
            end -= 1
            while end > start and 0x80 <= data[end] < 0xC0:
                end -= 1
        return start, end


@functools.cache
def compiled() -> Compiled:
    """Compile the cues for RE2, once per process (on first use, never at import)."""
    options = re2.Options()
    options.max_mem = 64 << 20
    options.never_capture = True
    cue_set = re2.Set.SearchSet(options)
    single = re2.Options()
    single.max_mem = 8 << 20  # the default; bounds the memory each cue's automaton may take
    single.never_capture = True
    regexes = []
    for cue in CUES:
        pattern = re2_pattern(cue.pattern.pattern)
        cue_set.Add(pattern)
        regexes.append(re2.compile(pattern, options=single))
    cue_set.Compile()
    sources = [cue.pattern.pattern for cue in CUES]
    return Compiled(cue_set, tuple(regexes), tuple(p.startswith(_LOOKBEHIND) for p in sources),
                    tuple(p.endswith(_LOOKAHEAD) for p in sources))
