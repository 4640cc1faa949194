"""Exfiltration detection: markdown and HTML images, links and hostnames that carry data to hosts
outside an allow list (the channel a prompt injection uses to send a conversation away when a
client renders a model's output or follows its links).

Types:

- ``exfil.markdown_image``: ``![x](https://host/...?...)`` or ``<img src=...>`` whose URL carries
  data (a query or fragment value, a long or encoded path segment, a template placeholder such as
  ``{data}``) to a host not allowed. Rendering an image fetches it without a click, so any data at
  all counts.
- ``exfil.link``: a link or bare URL whose query or path carries a long, encoded or placeholder
  value (short ordinary parameters and tracking parameters do not count).
- ``exfil.dns``: a hostname whose subdomain labels carry encoded data (long hex or base32 labels),
  the shape of DNS exfiltration.

Hosts in ``allowed_hosts`` (``example.com`` exactly, or ``*.example.com`` for its subdomains) are
never reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from lictor.detect.base import Hit
from lictor.detect.decode import segments
from lictor.errors import ConfigError

__all__ = ["TYPES", "ExfilDetector"]

TYPES = ("exfil.dns", "exfil.link", "exfil.markdown_image")

_URL = r"(?:https?:)?//[^\s<>\"'`)\]]{1,4096}"
_MD_IMAGE = re.compile(r"!\[[^\]\n]{0,500}\]\(\s*<?(?P<url>" + _URL + r")")
_HTML_IMAGE = re.compile(
    r"<img\b[^>]{0,500}?\bsrc\s*=\s*[\"']?(?P<url>" + _URL + r")", re.IGNORECASE)
_LINK = re.compile(r"(?P<url>https?://[^\s<>\"'`)\]]{1,4096})", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"\{\{?[^{}\s]{1,40}\}\}?|\$\{?[A-Za-z_][A-Za-z0-9_]{1,40}\}?|\[[A-Z_ ]{3,40}\]|<[A-Za-z_ ]{3,40}>|"
    r"%7B%7B?[^%\s]{1,40}%7D|(?:INSERT|PUT|APPEND|ADD)[_ -]?(?:DATA|HERE|SECRET|SUMMARY|CONVERSATION)",
    re.IGNORECASE)
_ENCODED = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}|(?:%[0-9A-Fa-f]{2}[^%]{0,3}){6,}")
_DATA_LABEL = re.compile(r"(?:[0-9a-f]{24,63}|[a-z2-7]{32,63})")
_TRACKING = re.compile(
    r"utm_\w+|gclid|fbclid|msclkid|dclid|mc_eid|mc_cid|_hsenc|_hsmi|igshid|yclid|ref_src|"
    r"x-amz-\w+|signature|sig|se|sp|sv|sr|st|spr|skoid|sktid|expires|policy|key-pair-id|awsaccesskeyid",
    re.IGNORECASE)


#: A URL's (host, path, query, fragment), None when it has no host.
_Parts = tuple[str, str, str, str] | None


def _host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    for rule in allowed:
        if rule.startswith("*."):
            if host.endswith(rule[1:]):
                return True
        elif host == rule:
            return True
    return False


def _value_score(value: str, *, in_path: bool = False) -> float:
    """How strongly one query value or path segment looks like data being carried: a template
    placeholder or encoded text counts; a plain sentence or an opaque token only supports."""
    if not value:
        return 0.0
    if _PLACEHOLDER.search(value):
        return 0.9
    if len(value) >= 12 and any(s.end - s.start >= len(value) // 2 and s.encoding[:3] in ("bas", "hex")
                                for s in segments(unquote(value), 4096)):
        return 0.9  # base64 or hex that decodes to text
    if in_path:
        return 0.0
    decoded = unquote(value.replace("+", " "))
    if len(decoded) >= 24 and decoded.count(" ") >= 3:
        return 0.45  # a sentence: search queries look the same
    if (_ENCODED.fullmatch(value) and any(c.isdigit() for c in value)
            and any(c.isupper() for c in value) and any(c.islower() for c in value)):
        return 0.45  # an opaque token: session and reset links look the same
    return 0.0


class ExfilDetector:
    """Data carried to untrusted hosts by images, links and hostnames (types in ``TYPES``).

    Options: ``allowed_hosts`` (exact host names or ``*.domain`` patterns never reported);
    ``threshold`` (0..1, default 0.5); ``image_any_data`` (default True: an image URL with any
    query value counts, however short)."""

    name = "exfil"
    version = "1"
    types: tuple[str, ...] = ("exfil.*",)

    def __init__(self, *, allowed_hosts: Iterable[str] = (), threshold: float = 0.5,
                 image_any_data: bool = True) -> None:
        hosts = []
        for i, host in enumerate(allowed_hosts):
            host = host.strip().lower().rstrip(".")
            bare = host[2:] if host.startswith("*.") else host
            if not bare or "*" in bare or "/" in bare or " " in bare:
                raise ConfigError(f"not a host name or '*.domain' pattern: {host!r}",
                                  path=f"allowed_hosts[{i}]")
            hosts.append(host)
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"must be between 0 and 1, not {threshold!r}", path="threshold")
        self.allowed_hosts = tuple(hosts)
        self.threshold = float(threshold)
        self.image_any_data = bool(image_any_data)

    def scan(self, text: str) -> list[Hit]:
        if "//" not in text:
            return []
        hits: list[Hit] = []
        images: list[tuple[int, int]] = []
        # each pattern runs once; its matches serve the image, link and DNS checks
        parsed: dict[str, _Parts] = {}
        image_matches = [*_MD_IMAGE.finditer(text), *(_HTML_IMAGE.finditer(text) if "<" in text else ())]
        link_matches = list(_LINK.finditer(text))
        for match in image_matches:
            score = self._url_score(match.group("url"), parsed, image=True)
            images.append(match.span("url"))
            if score >= self.threshold:
                hits.append(Hit("exfil.markdown_image", match.start(), match.end(), score))
        for match in link_matches:
            if any(s <= match.start() < e for s, e in images):
                continue
            url = match.group("url").rstrip(".,;:!?")
            score = self._url_score(url, parsed, image=False)
            if score >= self.threshold:
                hits.append(Hit("exfil.link", match.start(), match.start() + len(url), score))
        for match in (*image_matches, *link_matches):
            dns = self._dns_score(match.group("url"), parsed)
            if dns >= self.threshold:
                hits.append(Hit("exfil.dns", match.start("url"), match.end("url"), dns))
        return _dedupe(hits)

    def _split(self, url: str, parsed: dict[str, _Parts]) -> tuple[str, str, str, str] | None:
        """``url`` parsed (once per scan: the image or link check and the DNS check share it),
        None when it has no host or its host is allowed."""
        if url in parsed:
            split = parsed[url]
        else:
            split = parsed[url] = _parse(url)
        if split is None or _host_allowed(split[0], self.allowed_hosts):
            return None
        return split

    def _url_score(self, url: str, parsed: dict[str, _Parts], *, image: bool) -> float:
        split = self._split(url, parsed)
        if split is None:
            return 0.0
        _, path, query, fragment = split
        best = 0.0
        for part in query.split("&"):
            name, _, value = part.partition("=")
            if _TRACKING.fullmatch(name):
                continue
            best = max(best, _value_score(value), _value_score(name) if not value else 0.0)
            if image and value and self.image_any_data:
                best = max(best, 0.6)
        if query and not best and image and self.image_any_data and "=" not in query:
            best = 0.6
        for segment in path.split("/"):
            best = max(best, _value_score(segment, in_path=True))
        if fragment:
            best = max(best, _value_score(fragment, in_path=True))
        return best

    def _dns_score(self, url: str, parsed: dict[str, _Parts]) -> float:
        split = self._split(url, parsed)
        if split is None:
            return 0.0
        labels = split[0].lower().split(".")
        for label in labels[:-2]:
            if _DATA_LABEL.fullmatch(label) and sum(c.isdigit() for c in label) >= 4:
                return 0.7
        return 0.0


def _parse(url: str) -> tuple[str, str, str, str] | None:
    """(host, path, query, fragment) of ``url``, None without a host."""
    if url.startswith("//"):
        url = "https:" + url
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return None
    if not host:
        return None
    return host, parts.path, parts.query, parts.fragment


def _dedupe(hits: list[Hit]) -> list[Hit]:
    seen: set[tuple[str, int, int]] = set()
    out = []
    for hit in sorted(hits, key=lambda h: (h.start, h.type)):
        key = (hit.type, hit.start, hit.end)
        if key not in seen:
            seen.add(key)
            out.append(hit)
    return out
