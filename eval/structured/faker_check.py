"""An independent check of the PII detectors on values made by another generator (Faker), in
seven locales, and on Faker-made look-alikes that are not PII. Not tuned against: it shows how the
detectors fare on formats they were not written from. Needs the ``bench`` extra (Faker).

    python eval/structured/faker_check.py
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from faker import Faker

from lictor.detect import Detection, DetectionSettings

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL", "en_IN")
N = 150


def main() -> None:
    scanner = Detection.from_settings(DetectionSettings()).default
    found, total = Counter[tuple[str, str]](), Counter[tuple[str, str]]()
    for locale in LOCALES:
        fake = Faker(locale)
        Faker.seed(11)
        makers: list[tuple[str, Callable[[], str], str]] = [
            ("pii.email", fake.email, "Contact: {}"), ("pii.phone", fake.phone_number, "Phone: {}"),
            ("pii.credit_card", fake.credit_card_number, "card number {}"), ("pii.iban", fake.iban, "IBAN {}"),
            ("pii.ip_address", fake.ipv4, "from {}"), ("pii.ip_address", fake.ipv6, "from {}")]
        if locale == "en_US":
            makers.append(("pii.us_ssn", fake.ssn, "SSN: {}"))
        for _ in range(N):
            for kind, make, template in makers:
                value = make()
                text = template.format(value)
                start = text.index(value)
                total[(locale, kind)] += 1
                found[(locale, kind)] += any(f.type == kind and f.start < start + len(value) and start < f.end
                                             for f in scanner.scan(text))
    print(f"{'locale':<7} {'type':<18} {'recall':>7}")
    for key in sorted(total):
        print(f"{key[0]:<7} {key[1]:<18} {found[key] / total[key]:>7.1%}")
    print(f"all: {sum(found.values()) / sum(total.values()):.1%} of {sum(total.values())} values")

    fake = Faker("en_US")
    Faker.seed(5)
    negatives: dict[str, Callable[[], str]] = {
        "ean13": fake.ean13, "isbn13": fake.isbn13, "date": fake.date, "time": fake.time,
        "10 digits": lambda: str(fake.random_number(digits=10, fix_len=True)),
        "16 digits": lambda: str(fake.random_number(digits=16, fix_len=True)),
        "uuid": lambda: str(fake.uuid4()), "sha1": fake.sha1, "price": fake.pricetag, "zip": fake.zipcode,
        "text": lambda: fake.text(200), "user agent": fake.user_agent, "url": fake.url,
        "version": lambda: f"{fake.random_int(0, 20)}.{fake.random_int(0, 20)}.{fake.random_int(0, 99)}"}
    flagged = {name: sum(bool(scanner.scan(f"Ref {make()} noted")) for _ in range(200))
               for name, make in negatives.items()}
    print("look-alikes flagged (of 200 each):", ", ".join(f"{k} {v}" for k, v in flagged.items()))


if __name__ == "__main__":
    main()
