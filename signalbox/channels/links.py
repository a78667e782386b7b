"""Tracked links: every link in a message goes out as `{public base URL}/l/{token}`, and the
place it leads gets UTM tags naming the channel, playbook and step.

The token is an HMAC of the send's idempotency key and the link under the server's secret:
the same step rendered again (a crash between ledger row and provider call) carries the same
tokens, and nobody can forge or guess the token of another person's message. The unsubscribe
link and links already tracked are never wrapped: one click must still unsubscribe, and a
link must not be counted twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from signalbox.channels.schemas import Email, Sms

# A link ends at white space, a quote or an angle bracket: the way it ends in text, in an
# href attribute and in `<https://…>`.
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?"
TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")


@dataclass(frozen=True, slots=True)
class Link:
    token: str
    url: str  # where the click goes: the link as written, UTM tags added


@dataclass(frozen=True, slots=True)
class Tagging:
    """Who a message's links are tracked for: the send and what its UTM tags say."""

    base: str | None  # public base URL, no trailing slash; None: tagged, not tracked
    secret: str
    send_key: str
    channel: str  # utm_medium
    playbook: str | None  # utm_campaign
    step: str | None  # utm_content


def token_for(secret: str, send_key: str, url: str) -> str:
    digest = hmac.new(secret.encode(), f"link\x00{send_key}\x00{url}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def with_utm(url: str, medium: str, campaign: str | None, content: str | None) -> str:
    """Adds the tags the link does not carry already: an author's own `utm_campaign` wins."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    wanted = [("utm_source", "signalbox"), ("utm_medium", medium)]
    if campaign:
        wanted.append(("utm_campaign", campaign))
    if content:
        wanted.append(("utm_content", content))
    query += [(name, value) for name, value in wanted if name not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _split_trailing(found: str) -> tuple[str, str]:
    """`https://x.test/a).` in prose: the `).` belongs to the sentence, a `)` the link opened
    belongs to the link."""
    end = len(found)
    while end > 0:
        char = found[end - 1]
        unopened = char == ")" and found[:end].count("(") < found[:end].count(")")
        if char not in _TRAILING and not unopened:
            break
        end -= 1
    return found[:end], found[end:]


class Tracker:
    """Rewrites one message's texts; the same link in its text and HTML parts gets one token."""

    def __init__(self, tagging: Tagging) -> None:
        self.tagging = tagging
        self.links: dict[str, Link] = {}  # by the link as written

    def rewrite(self, text: str, *, is_html: bool = False) -> str:
        return _URL.sub(self._replacer(is_html), text)

    def _replacer(self, is_html: bool) -> Callable[[re.Match[str]], str]:
        tagging = self.tagging
        own = (f"{tagging.base}/u/", f"{tagging.base}/l/") if tagging.base else ()

        def swap(match: re.Match[str]) -> str:
            written, tail = _split_trailing(match.group(0))
            url = html.unescape(written) if is_html else written
            if url.startswith(own) or not urlsplit(url).hostname:
                return match.group(0)
            target = with_utm(url, tagging.channel, tagging.playbook, tagging.step)
            if tagging.base is None:
                # No public base URL: nowhere for a click to land, but the tags still say
                # where a visit came from in the business's own analytics.
                return (html.escape(target) if is_html else target) + tail
            link = self.links.get(url)
            if link is None:
                link = self.links[url] = Link(token_for(tagging.secret, tagging.send_key, url), target)
            return f"{tagging.base}/l/{link.token}{tail}"

        return swap


def track(message: Email | Sms, tagging: Tagging) -> tuple[Email | Sms, list[Link]]:
    """The message with its links tracked, and the links to store with its send."""
    tracker = Tracker(tagging)
    if isinstance(message, Sms):
        return replace(message, body=tracker.rewrite(message.body)), list(tracker.links.values())
    body = tracker.rewrite(message.body)
    page = tracker.rewrite(message.html, is_html=True) if message.html else message.html
    return replace(message, body=body, html=page), list(tracker.links.values())
