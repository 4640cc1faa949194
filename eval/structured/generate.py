"""Generate the structured-PII and secrets evaluation sets with known ground truth (deterministic).

    python eval/structured/generate.py        # rewrites the *.jsonl files beside this script

Each line is {"text": ..., "spans": [{"type", "start", "end"}], "split": "dev" | "heldout",
"category": ...}. Values are made by their own rules (check digits computed, number plans checked),
placed in surroundings (prose, e-mails, CSV, logs, config files, code) and recorded with their span.
The ``heldout`` split uses another seed and surroundings the dev split never uses (its errors were
seen once while the detectors were tuned); the ``test`` split, another seed and surroundings again,
was written after tuning and never used to tune anything. benign.jsonl holds hard negatives (order numbers, dates, versions,
prices, UUIDs, git SHAs, base64 images...) with no spans.
"""

from __future__ import annotations

import base64
import json
import random
import string
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from lictor.detect.checksums import IBAN_LENGTHS, dni_letter, luhn_valid, verhoeff_valid  # noqa: E402

FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
         "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf", "zoe", "amara", "bjorn",
         "chen", "dmitri", "elif", "fatima", "goran", "hana", "ines", "jose", "kenji", "lucia", "mateo"]
LAST = ["smith", "jones", "garcia", "muller", "rossi", "dubois", "kowalski", "nguyen", "patel", "okafor",
        "jansen", "silva", "tanaka", "novak", "larsen", "moreau", "fischer", "romero", "ivanova", "haddad"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "proton.me", "acme-corp.com", "mail.example.org",
           "uni-hamburg.de", "orange.fr", "web.de", "company.co.in", "startup.io", "bank.nl"]


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    # -- PII ----------------------------------------------------------------------------------
    def email(self) -> str:
        f, last = self.r.choice(FIRST), self.r.choice(LAST)
        local = self.r.choice([f"{f}.{last}", f"{f[0]}{last}", f"{f}{self.r.randint(1, 99)}", f"{f}_{last}",
                               f"{f}+news", f"{last}.{f}"])
        return f"{local}@{self.r.choice(DOMAINS)}"

    def phone(self) -> str:
        import phonenumbers

        while True:
            kind = self.r.randrange(6)
            if kind == 0:
                text = f"+1 {self.r.randint(201, 989)} {self.r.randint(200, 999)} {self.digits(4)}"
            elif kind == 1:
                text = f"({self.r.randint(201, 989)}) {self.r.randint(200, 999)}-{self.digits(4)}"
            elif kind == 2:
                text = f"+44 7{self.digits(3)} {self.digits(6)}"
            elif kind == 3:
                text = f"+49 30 {self.digits(8)}"
            elif kind == 4:
                text = f"+33 6 {self.digits(2)} {self.digits(2)} {self.digits(2)} {self.digits(2)}"
            else:
                text = f"+91 9{self.digits(4)} {self.digits(5)}"
            region = "US" if text.startswith("(") else None
            try:
                if phonenumbers.is_valid_number(phonenumbers.parse(text, region)):
                    return text
            except phonenumbers.NumberParseException:
                continue

    def card(self) -> str:
        brand = self.r.choice(["visa", "mc", "mc2", "amex", "discover", "jcb", "diners", "unionpay"])
        prefix, length = {"visa": ("4", 16), "mc": (str(self.r.randint(51, 55)), 16),
                          "mc2": (str(self.r.randint(2221, 2720)), 16), "amex": (self.r.choice(["34", "37"]), 15),
                          "discover": ("6011", 16), "jcb": (str(self.r.randint(3528, 3589)), 16),
                          "diners": (self.r.choice(["36", "38"]), 14), "unionpay": ("62", 16)}[brand]
        body = prefix + self.digits(length - len(prefix) - 1)
        number = next(body + d for d in string.digits if luhn_valid(body + d))
        style = self.r.randrange(3)
        if style == 0:
            return number
        sep = " " if style == 1 else "-"
        if length == 15:
            return sep.join((number[:4], number[4:10], number[10:]))
        return sep.join(number[i:i + 4] for i in range(0, length, 4))

    def iban(self) -> str:
        country = self.r.choice(["DE", "GB", "FR", "NL", "ES", "IT", "BE", "CH", "AT", "PL"])
        n = IBAN_LENGTHS[country] - 4
        if country in ("GB", "NL"):
            bban = self.chars(string.ascii_uppercase, 4) + self.digits(n - 4)
        elif country == "IT":
            bban = self.r.choice(string.ascii_uppercase) + self.digits(n - 1)
        else:
            bban = self.digits(n)
        moved = bban + country + "00"
        check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
        iban = f"{country}{check:02d}{bban}"
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if self.r.random() < 0.6 else iban

    def ssn(self) -> str:
        area = self.r.choice([a for a in range(1, 900) if a != 666])
        return f"{area:03d}-{self.r.randint(1, 99):02d}-{self.r.randint(1, 9999):04d}"

    def ipv4(self) -> str:
        return ".".join(str(self.r.randint(1, 254)) for _ in range(4))

    def ipv6(self) -> str:
        groups = [f"{self.r.randint(0, 0xFFFF):x}" for _ in range(8)]
        if self.r.random() < 0.5:
            return "2001:db8::" + ":".join(groups[:3])
        return ":".join(groups)

    def passport(self) -> str:
        return self.r.choice([self.chars(string.ascii_uppercase, 1) + self.digits(8), self.digits(9),
                              self.chars(string.ascii_uppercase, 2) + self.digits(7)])

    def nino(self) -> str:
        first = self.r.choice("ABCEGHJKLMNPRSTWXYZ")
        second = self.r.choice("ABCEGHJKLMNPRSTWXYZ")
        while first + second in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}:
            second = self.r.choice("ABCEHJKLMPRSTWXYZ")
        d = self.digits(6)
        return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {self.r.choice('ABCD')}"

    def bsn(self) -> str:
        while True:
            d = str(self.r.randint(1, 9)) + self.digits(8)
            total = sum((9 - i) * int(c) for i, c in enumerate(d[:8])) - int(d[8])
            if total % 11 == 0 and total:
                return d

    def dni(self) -> str:
        n = self.r.randint(10_000_000, 99_999_999)
        return f"{n}{dni_letter(n)}"

    def nie(self) -> str:
        lead = self.r.randrange(3)
        n = self.r.randint(1_000_000, 9_999_999)
        return f"{'XYZ'[lead]}{n}{dni_letter(int(str(lead) + str(n)))}"

    def aadhaar(self) -> str:
        while True:
            d = str(self.r.randint(2, 9)) + self.digits(11)
            if verhoeff_valid(d) and len(set(d)) >= 3:
                return f"{d[:4]} {d[4:8]} {d[8:]}"

    def nir(self) -> str:
        body = f"{self.r.randint(1, 2)}{self.digits(2)}{self.r.randint(1, 12):02d}{self.r.randint(1, 95):02d}" \
               f"{self.digits(3)}{self.digits(3)}"
        key = 97 - int(body) % 97
        return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"

    def de_tax(self) -> str:
        while True:
            first = self.r.sample("123456789", 1)
            rest = self.r.sample([c for c in string.digits if c != first[0]], 8)
            ten = first + rest
            dup = self.r.randrange(0, 9)
            ten.insert(self.r.randrange(1, 10), ten[dup])
            ten = ten[:10]
            if any(ten[i] == ten[i + 1] == ten[i + 2] for i in range(8)):
                continue
            from collections import Counter

            counts = sorted(Counter(ten).values(), reverse=True)
            if counts[0] != 2 or counts[1] != 1:
                continue
            product = 10
            for ch in ten:
                total = (int(ch) + product) % 10 or 10
                product = (2 * total) % 11
            check = (11 - product) % 10
            return "".join(ten) + str(check)


# type -> (value maker, dev surroundings, held-out surroundings); {v} is the value
PII: dict[str, tuple[str, list[str], list[str]]] = {
    "pii.email": ("email", ["Please reply to {v} by Friday.", "From: {v}\nSubject: invoice", "name,email\nAlice,{v}",
                            '{{"user": "u-17", "email": "{v}"}}'],
                  ["cc: {v}; bcc: none", "<a href=\"mailto:{v}\">write to us</a>", "Contact {v} for access."]),
    "pii.phone": ("phone", ["Call me on {v} after 5pm.", "phone: {v}", "Mobile {v}", "tel={v}"],
                  ["You can reach the branch at {v}.", "| Jane | {v} |", "WhatsApp {v} (preferred)"]),
    "pii.credit_card": ("card", ["Card number {v} exp 04/28", "pay with {v}", '{{"pan": "{v}"}}',
                                 "charged {v} 120.00 EUR"],
                        ["cc={v}&cvv=123", "Customer gave card {v} over the phone.", "PAN: {v}"]),
    "pii.iban": ("iban", ["IBAN: {v}", "Please transfer to {v} (Acme GmbH).", "iban={v}"],
                 ["Bankverbindung {v}, BIC DEUTDEFF", "payee account {v}"]),
    "pii.us_ssn": ("ssn", ["SSN {v}", "social security number: {v}", "ssn,{v},approved"],
                   ["Applicant's SSN is {v}.", "tax id (SSN) {v}"]),
    "pii.ip_address": ("ipv4", ["client ip {v} blocked", "GET /login from {v}", "host={v} port=22"],
                       ["Failed password for root from {v} port 4122 ssh2", "X-Forwarded-For: {v}"]),
    "pii.ip_address#6": ("ipv6", ["client {v} connected", "addr={v}"], ["Accepted key for deploy from {v}"]),
    "pii.passport": ("passport", ["Passport number: {v}", "passport no {v}, issued 2019"],
                     ["Her passport ({v}) expires next year."]),
    "pii.national_id.uk_nino": ("nino", ["NI number {v}", "National Insurance: {v}"], ["NINO={v}"]),
    "pii.national_id.nl_bsn": ("bsn", ["BSN: {v}", "burgerservicenummer {v}"], ["uw BSN is {v}."]),
    "pii.national_id.es_dni": ("dni", ["DNI/NIE: {v}", "documento {v}"], ["NIF {v} (cliente)"]),
    "pii.national_id.es_nie": ("nie", ["NIE: {v}", "tarjeta de residencia {v}"], ["extranjero con NIE {v}"]),
    "pii.national_id.in_aadhaar": ("aadhaar", ["Aadhaar {v}", "UID: {v}"], ["aadhaar no. {v} verified"]),
    "pii.national_id.fr_nir": ("nir", ["NIR {v}", "numéro de sécurité sociale : {v}"], ["n° SS {v}"]),
    "pii.national_id.de_tax_id": ("de_tax", ["Steuer-ID: {v}", "steuerliche Identifikationsnummer {v}"],
                                  ["IdNr {v}"]),
}

# surroundings of the "test" split, written after the detectors were tuned and never used to tune them
PII_TEST = {
    "pii.email": ["Forwarded message from {v} at 10:42", "reply-to={v}"],
    "pii.phone": ["Rückruf bitte unter {v}", "emergency contact: {v} (mother)"],
    "pii.credit_card": ["Visa ending ... full number {v}", "payment_method.card_number = {v}"],
    "pii.iban": ["Refund goes to account {v} today.", "IBAN\t{v}\tEUR"],
    "pii.us_ssn": ["Employee SSN: {v}; DOB withheld", "SSN={v}"],
    "pii.ip_address": ["[{v}] - - \"GET / HTTP/1.1\" 200", "peer {v} reset the connection"],
    "pii.passport": ["PASSPORT: {v} (GBR)", "scan of passport no. {v} attached"],
    "pii.national_id.uk_nino": ["Her National Insurance number is {v}."],
    "pii.national_id.nl_bsn": ["BSN {v} (verified)"],
    "pii.national_id.es_dni": ["DNI {v} del titular"],
    "pii.national_id.es_nie": ["NIE {v}, expediente abierto"],
    "pii.national_id.in_aadhaar": ["Aadhaar number: {v}"],
    "pii.national_id.fr_nir": ["Numéro de sécurité sociale {v}"],
    "pii.national_id.de_tax_id": ["Ihre Steuer-ID lautet {v}."],
}
SECRET_PLACES_TEST = {
    "secret.aws_access_key": ["Credentials: {v} (rotate!)"],
    "secret.aws_secret_key": ["AWS_SECRET_ACCESS_KEY: {v}"],
    "secret.url_password": ["amqps://worker:{v}@mq.example.net/vhost"],
    "secret.generic": ["auth_token = '{v}'", "api_key: {v}"],
    "*": ["Here is the key you asked for: {v}", "<password>{v}</password>", "headers['X-Api-Key'] = '{v}'"],
}

_B64 = string.ascii_letters + string.digits


def _jwt(g: Gen) -> str:
    def enc(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()
    header = enc({"alg": g.r.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
    payload = enc({"sub": g.digits(8), "name": g.r.choice(FIRST), "iat": 1700000000 + g.r.randint(0, 10**7)})
    return f"{header}.{payload}.{g.chars(_B64 + '-_', 43)}"


def _pem(g: Gen) -> str:
    kind = g.r.choice(["RSA ", "EC ", "OPENSSH ", ""])
    body = "\n".join(g.chars(_B64 + "+/", 64) for _ in range(g.r.randint(3, 8)))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


SECRETS: dict[str, Callable[[Gen], str]] = {
    "secret.aws_access_key": lambda g: g.r.choice(["AKIA", "ASIA"]) + g.chars(string.ascii_uppercase + string.digits, 16),
    "secret.aws_secret_key": lambda g: g.chars(_B64 + "/+", 40),
    "secret.github_token": lambda g: g.r.choice(["ghp_", "gho_", "ghs_"]) + g.chars(_B64, 36)
    if g.r.random() < 0.7 else "github_pat_" + g.chars(_B64, 22) + "_" + g.chars(_B64, 59),
    "secret.gitlab_token": lambda g: "glpat-" + g.chars(_B64 + "_-", 20),
    "secret.slack_token": lambda g: f"xoxb-{g.digits(12)}-{g.digits(13)}-{g.chars(_B64, 24)}",
    "secret.slack_webhook": lambda g: f"https://hooks.slack.com/services/T{g.chars(string.ascii_uppercase + string.digits, 8)}"
                                      f"/B{g.chars(string.ascii_uppercase + string.digits, 10)}/{g.chars(_B64, 24)}",
    "secret.stripe_key": lambda g: g.r.choice(["sk_live_", "rk_live_", "sk_test_"]) + g.chars(_B64, g.r.choice([24, 99])),
    "secret.google_api_key": lambda g: "AIza" + g.chars(_B64 + "_-", 35),
    "secret.openai_key": lambda g: "sk-proj-" + g.chars(_B64 + "_-", 120) if g.r.random() < 0.6
    else "sk-" + g.chars(_B64, 20) + "T3BlbkFJ" + g.chars(_B64, 20),
    "secret.anthropic_key": lambda g: "sk-ant-api03-" + g.chars(_B64 + "_-", 93) + "AA",
    "secret.private_key": _pem,
    "secret.jwt": _jwt,
    "secret.url_password": lambda g: g.chars(_B64, g.r.randint(10, 24)),
    "secret.generic": lambda g: g.chars(_B64, 6) + g.r.choice("!#%&*+-=?@^_") + g.chars(_B64 + "!#%&*", g.r.randint(8, 20)),
}

# surroundings per secret type: {v} the secret
SECRET_PLACES_DEV = {
    "secret.aws_access_key": ["AWS_ACCESS_KEY_ID={v}", "aws_access_key_id = {v}", "key: {v}"],
    "secret.aws_secret_key": ["aws_secret_access_key = {v}", "AWS_SECRET_ACCESS_KEY={v}"],
    "secret.url_password": ["DATABASE_URL=postgres://app:{v}@db.internal:5432/prod",
                            "broker: amqp://svc:{v}@rabbit:5672/"],
    "secret.generic": ['password = "{v}"', "DB_PASSWORD={v}", "client_secret: {v}"],
    "*": ["export TOKEN={v}", "curl -H 'Authorization: Bearer {v}' https://api.example.com",
          '{{"level":"debug","msg":"using key","key":"{v}"}}', "config = {{'api_key': '{v}'}}"],
}
SECRET_PLACES_HELD = {
    "secret.aws_access_key": ["[default]\naws_access_key_id={v}\nregion=eu-west-1"],
    "secret.aws_secret_key": ['  "aws_secret_key": "{v}",'],
    "secret.url_password": ["mongodb+srv://admin:{v}@cluster0.mongodb.net/test", "redis://default:{v}@cache:6379/0"],
    "secret.generic": ["db.password={v}", "  signing_key: '{v}'"],
    "*": ["2026-11-28T10:00:01Z WARN leaked credential {v} in request", "const KEY = \"{v}\";", "token: {v}"],
}

BENIGN = [
    "Order #{d8} shipped on 2026-11-28, invoice INV-{d6}.", "Your ticket {d10} has been updated.",
    "Meeting moved to 28/11/2026 at 14:30:00.", "Upgrade to version 2.14.3 (build 10.0.19045.3803).",
    "Total: $1,299.99 incl. VAT of €45.00; discount 12.5%.", "request_id={uuid} status=200 latency=41ms",
    "commit {sha} merged into main", "sha256:{sha64}", "<img src=\"data:image/png;base64,{img}\">",
    "ISBN 978-3-16-148410-0, tracking 1Z999AA10123456784", "Coordinates 48.8566, 2.3522 and 40.7128,-74.0060",
    "Reset your password using the link we sent.", "The token bucket refills 10 tokens per second.",
    "password = get_password()", 'api_key = os.environ["API_KEY"]', "secret: ${{SECRET_VALUE}}",
    "Use the API key from the vault; never paste it here.", "Color #ff8800 and #00ffcc on 1920x1080.",
    "Invoice 2026-{d4} for account {d8}, amount 4,500.00", "Call the support line during office hours.",
    "Part no. {d3}-{d4}-{d3} in stock: {d2} units", "Build {d4}.{d2}.{d3} released", "PIN reset for user u-{d6}",
    "Lot {d12} expires 2027-03", "Serial SN-{d9}", "Room 12-204, floor 3, extension x{d4}",
    "The IBAN format has up to 34 characters.", "Social security rules changed in 2025.",
    "Temperature 21.5C, humidity 40%, pressure 1013.25 hPa", "p99 latency 12.4 ms over 1,000,000 requests",
    "ids: [{d7}, {d7}, {d7}]", "timestamp 1732800000123", "Call 911 in an emergency.", "v1.2.3.4-rc1 tagged",
    "employee EMP-{d6} joined", "Case {d4}/{d2}/{d5} closed", "SKU {d13}", "qty=3&price=19.99&sku={d8}",
    "The model scored 0.9731 on the holdout set.", "See RFC 6962 section 2.1.1 for details.",
]


def _fill(g: Gen, template: str) -> str:
    repl = {f"d{n}": (lambda n=n: g.digits(n)) for n in range(2, 14)}
    out = template
    for key, make in sorted(repl.items(), key=lambda kv: -len(kv[0])):
        while "{" + key + "}" in out:
            out = out.replace("{" + key + "}", make(), 1)
    out = out.replace("{uuid}", "-".join(g.chars("0123456789abcdef", n) for n in (8, 4, 4, 4, 12)))
    out = out.replace("{sha64}", g.chars("0123456789abcdef", 64)).replace("{sha}", g.chars("0123456789abcdef", 40))
    out = out.replace("{img}", base64.b64encode(bytes(g.r.randrange(256) for _ in range(300))).decode())
    return out.replace("{{", "{").replace("}}", "}")


def _place(template: str, value: str, kind: str) -> dict[str, object]:
    before, after = template.split("{v}", 1)
    before = before.replace("{{", "{").replace("}}", "}")
    after = after.replace("{{", "{").replace("}}", "}")
    text = before + value + after
    return {"text": text, "spans": [{"type": kind, "start": len(before), "end": len(before) + len(value)}]}


def build(split: str, seed: int, per_type: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    g = Gen(seed)
    held = split == "heldout"
    pii: list[dict[str, object]] = []
    for key, (maker, dev, heldout) in PII.items():
        kind = key.split("#")[0]
        for _ in range(per_type):
            value = getattr(g, maker)()
            templates = PII_TEST[kind] if split == "test" else heldout if held else dev
            line = _place(g.r.choice(templates), value, kind)
            pii.append({**line, "split": split, "category": kind})
    secrets: list[dict[str, object]] = []
    places = SECRET_PLACES_TEST if split == "test" else SECRET_PLACES_HELD if held else SECRET_PLACES_DEV
    for kind, make in SECRETS.items():
        for _ in range(per_type):
            template = g.r.choice(places.get(kind, places["*"]))
            line = _place(template, make(g), kind)
            secrets.append({**line, "split": split, "category": kind})
    return pii, secrets


def main() -> None:
    out: dict[str, list[dict[str, object]]] = {"pii.jsonl": [], "secrets.jsonl": [], "benign.jsonl": []}
    for split, seed, n in (("dev", 1, 60), ("heldout", 2, 40), ("test", 4, 40)):
        pii, secrets = build(split, seed, n)
        out["pii.jsonl"] += pii
        out["secrets.jsonl"] += secrets
    g = Gen(3)
    for i in range(600):
        out["benign.jsonl"].append({"text": _fill(g, BENIGN[i % len(BENIGN)]), "spans": [],
                                    "split": ("heldout", "test", "dev", "dev", "dev")[i % 5], "category": "benign"})
    for name, lines in out.items():
        with (HERE / name).open("w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        print(f"{name}: {len(lines)} lines")


if __name__ == "__main__":
    main()
