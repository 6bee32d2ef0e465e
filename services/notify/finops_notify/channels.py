"""What each channel receives: a signed JSON webhook carrying a batch of events, a Slack Block Kit message, a
Teams Adaptive Card, or an email with text and HTML parts. Builders are pure; senders do the I/O and say how it
went."""

from __future__ import annotations

import asyncio
import html
import json
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from string import Template
from typing import Any

import h11

from finops_notify import signing, transport

SEVERITY_ICON = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}


@dataclass(frozen=True)
class Message:
    """One notification (or digest) as every channel sees it."""

    title: str
    severity: str
    facts: tuple[tuple[str, str], ...]
    ce_type: str
    event_id: str
    occurred_at: str
    data: Any = None
    sections: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Digest sections: (heading, lines)."""
    data_json: str | None = None
    """`data` already encoded (the event payload as stored), spliced into webhook items as is."""
    idempotency_key: str = ""
    """The same in every request that carries this event to a subscriber: `event-<ce_id>` or `digest-<id>`."""


def webhook_item(m: Message) -> bytes:
    """One event of a webhook batch, encoded once and shared by every subscriber's request."""
    head = json.dumps(
        {
            "id": m.event_id,
            "idempotency_key": m.idempotency_key or f"event-{m.event_id}",
            "type": m.ce_type,
            "time": m.occurred_at,
            "severity": m.severity,
            "title": m.title,
            "facts": dict(m.facts),
            "sections": {h: list(lines) for h, lines in m.sections},
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    data = m.data_json if m.data_json is not None else json.dumps(m.data, separators=(",", ":"))
    return b'{"data":' + data.encode() + b"," + head[1:].encode()


def webhook_body(delivery_id: int, items: bytes) -> bytes:
    """The signed body: `{"delivery_id": …, "events": [item, …]}`, from the items already joined by commas."""
    return b'{"delivery_id":%d,"events":[' % delivery_id + items + b"]}"


def slack_body(m: Message) -> dict[str, Any]:
    """Slack incoming webhook payload in Block Kit, with `text` as the notification fallback."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": m.title[:150], "emoji": True}},
    ]
    if m.facts:
        blocks.append(
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in m.facts[:10]]}
        )
    for heading, lines in m.sections:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{heading}*\n" + "\n".join(lines)}})
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"{SEVERITY_ICON[m.severity]} {m.severity} · `{m.ce_type}`"}],
        }
    )
    return {"text": f"{m.title}", "blocks": blocks}


def teams_body(m: Message) -> dict[str, Any]:
    """Teams incoming webhook (Workflows) payload: one Adaptive Card 1.4."""
    color = {"info": "Default", "warning": "Warning", "critical": "Attention"}[m.severity]
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": m.title, "weight": "Bolder", "size": "Medium", "wrap": True, "color": color},
    ]
    if m.facts:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in m.facts]})
    for heading, lines in m.sections:
        body.append({"type": "TextBlock", "text": heading, "weight": "Bolder", "wrap": True})
        body.extend({"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in lines)
    body.append({"type": "TextBlock", "text": f"{m.severity} · {m.ce_type}", "isSubtle": True, "size": "Small"})
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


_TEXT = Template("$title\n\n$facts$sections\n-- \nFinOps platform · $severity · $ce_type\n")
_HTML = Template(
    """<!doctype html><html><body style="font-family:sans-serif">
<h2>$title</h2>
<table cellpadding="4">$facts</table>
$sections
<p style="color:#777;font-size:small">FinOps platform · $severity · $ce_type</p>
</body></html>"""
)


def email_message(m: Message, *, sender: str, to: list[str]) -> EmailMessage:
    """An email with a text part and an HTML alternative, from the same facts."""
    e = html.escape
    msg = EmailMessage()
    msg["Subject"] = f"[FinOps {m.severity}] {m.title}"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Message-ID"] = make_msgid(domain="finops.notify")
    msg["X-Finops-Event-Id"] = m.event_id
    text_facts = "".join(f"{k}: {v}\n" for k, v in m.facts)
    text_sections = "".join(f"\n{h}\n" + "".join(f"  - {line}\n" for line in lines) for h, lines in m.sections)
    msg.set_content(_TEXT.substitute(title=m.title, facts=text_facts, sections=text_sections, severity=m.severity,
                                     ce_type=m.ce_type))  # fmt: skip
    html_facts = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in m.facts)
    html_sections = "".join(
        f"<h3>{e(h)}</h3><ul>" + "".join(f"<li>{e(line)}</li>" for line in lines) + "</ul>" for h, lines in m.sections
    )
    msg.add_alternative(
        _HTML.substitute(title=e(m.title), facts=html_facts, sections=html_sections, severity=e(m.severity),
                         ce_type=e(m.ce_type)),
        subtype="html",
    )  # fmt: skip
    return msg


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False
    """A failure no retry can fix (4xx other than 408/429): dead-letter it now."""


async def post(client: transport.HttpClient, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST and say how it went; TargetRefused passes through (the caller records a refusal, not a failure)."""
    try:
        response = await client.post(url, body, {"Content-Type": "application/json", **headers})
    except TimeoutError:
        return Outcome(False, error="TimeoutError: no complete answer within the HTTP timeout")
    except (OSError, h11.ProtocolError, transport.TransportError) as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status < 300:
        return Outcome(True, response.status)
    permanent = 400 <= response.status < 500 and response.status not in (408, 409, 425, 429)
    return Outcome(False, response.status, f"HTTP {response.status}: {response.text[:200]}", permanent)


async def signed_post(
    client: transport.HttpClient,
    url: str,
    body: bytes,
    *,
    secret: bytes,
    idempotency_key: str,
    headers: dict[str, str] | None = None,
) -> Outcome:
    signed = signing.sign(secret, body, idempotency_key=idempotency_key)
    return await post(client, url, body, {**signed, **(headers or {})})


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 20.0


def _send_email(smtp: Smtp, msg: EmailMessage) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context())
        if smtp.username and smtp.password:
            client.login(smtp.username, smtp.password)
        client.send_message(msg)


async def send_email(smtp: Smtp, msg: EmailMessage) -> Outcome:
    try:
        await asyncio.to_thread(_send_email, smtp, msg)
    except smtplib.SMTPRecipientsRefused as exc:
        return Outcome(False, error=f"recipients refused: {list(exc.recipients)}", permanent=True)
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, exc.smtp_code, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:500], 500 <= exc.smtp_code)
    except (OSError, smtplib.SMTPException) as exc:
        # The password never appears here: smtplib's errors carry server replies, not credentials.
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:500])
    return Outcome(True, 250)
