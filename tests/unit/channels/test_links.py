"""Link rewriting: what is wrapped, what the click leads to, and what is left alone."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from signalbox.channels import links
from signalbox.channels.schemas import Email, Sms

BASE = "https://sb.example.com"


def _tagging(send_key: str = "enr-1:email-now", base: str | None = BASE) -> links.Tagging:
    return links.Tagging(base, "s3cret", send_key, "email", "failed-payment-recovery", "email-now")


def test_a_link_is_wrapped_and_leads_to_its_place_with_utm_tags():
    tracker = links.Tracker(_tagging())
    out = tracker.rewrite("Pay here: https://invoice.stripe.com/i/acct_1/in_1?s=ap thanks")
    (link,) = tracker.links.values()
    assert out == f"Pay here: {BASE}/l/{link.token} thanks"
    assert links.TOKEN.match(link.token)
    parts = urlsplit(link.url)
    assert (parts.netloc, parts.path) == ("invoice.stripe.com", "/i/acct_1/in_1")
    assert parse_qs(parts.query) == {
        "s": ["ap"],
        "utm_source": ["signalbox"],
        "utm_medium": ["email"],
        "utm_campaign": ["failed-payment-recovery"],
        "utm_content": ["email-now"],
    }


def test_an_authors_own_utm_tags_are_kept_and_a_fragment_survives():
    tracked = links.with_utm("https://gym.example/p?utm_campaign=spring#top", "sms", "win-back", "sms")
    parts = urlsplit(tracked)
    assert parse_qs(parts.query)["utm_campaign"] == ["spring"] and parts.fragment == "top"
    assert parse_qs(parts.query)["utm_medium"] == ["sms"]


def test_sentence_punctuation_stays_outside_the_link_but_a_links_own_parenthesis_does_not():
    tracker = links.Tracker(_tagging())
    out = tracker.rewrite("See https://gym.example/faq. Or (https://gym.example/a) and https://w.example/A_(b)!")
    written = sorted(tracker.links)
    assert written == ["https://gym.example/a", "https://gym.example/faq", "https://w.example/A_(b)"]
    assert out.endswith("!") and not out.endswith(")!") and ". Or (" in out and ") and " in out
    assert out.count(f"{BASE}/l/") == 3


def test_the_same_link_in_text_and_html_is_one_token_and_html_entities_are_read():
    message = Email(
        "pat@example.com",
        "Hi",
        "Go: https://gym.example/a?x=1&y=2",
        '<p><a href="https://gym.example/a?x=1&amp;y=2">Go</a></p>',
    )
    out, found = links.track(message, _tagging())
    (link,) = found
    assert isinstance(out, Email)
    assert out.body == f"Go: {BASE}/l/{link.token}"
    assert out.html == f'<p><a href="{BASE}/l/{link.token}">Go</a></p>'
    assert parse_qs(urlsplit(link.url).query)["y"] == ["2"]


def test_unsubscribe_and_already_tracked_links_and_other_schemes_are_left_alone():
    text = f"Stop: {BASE}/u/abc.def and {BASE}/l/{'A' * 22} or mailto:desk@gym.example, call tel:+14155550100"
    tracker = links.Tracker(_tagging())
    assert tracker.rewrite(text) == text and tracker.links == {}


def test_tokens_are_stable_for_a_send_and_differ_between_sends_and_secrets():
    url = "https://gym.example/a"
    assert links.token_for("k", "enr-1:sms", url) == links.token_for("k", "enr-1:sms", url)
    assert links.token_for("k", "enr-1:sms", url) != links.token_for("k", "enr-2:sms", url)
    assert links.token_for("k", "enr-1:sms", url) != links.token_for("other", "enr-1:sms", url)


def test_without_a_public_base_url_links_are_tagged_not_tracked():
    sms, found = links.track(Sms("+14155550100", "Book: https://gym.example/book"), _tagging(base=None))
    assert found == [] and isinstance(sms, Sms)
    assert sms.body.startswith("Book: https://gym.example/book?utm_source=signalbox&utm_medium=email")
    page = links.Tracker(_tagging(base=None)).rewrite('<a href="https://gym.example/a?x=1">a</a>', is_html=True)
    assert "&amp;utm_source=signalbox" in page
