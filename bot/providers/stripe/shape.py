"""What a signed Stripe webhook body must look like before any of it is acted on.

A body with a valid signature came from Stripe (or from someone holding our secret), so it is
not refused like a forgery: if it cannot be read (not JSON, an event without an id, a handled
type whose object lacks a field or has one of the wrong type) it is set aside by the webhook,
recorded and reported, because answering it 4xx or 5xx would only make Stripe send the same
bytes again for days. `problem` names the first field that is wrong, never its value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# The fields the webhook reads of each handled object, and the JSON types each may have
# (None: Stripe may send null). An expanded payment_intent is an object with a string id.
STR, INT, BOOL, OBJ, NULL = (str,), (int,), (bool,), (dict,), (type(None),)
SESSION_FIELDS: dict[str, tuple[type, ...]] = {
    "id": STR,
    "status": STR + NULL,
    "payment_status": STR,
    "metadata": OBJ + NULL,
    "amount_total": INT + NULL,
    "currency": STR + NULL,
    "payment_intent": STR + OBJ + NULL,
}
CHARGE_FIELDS: dict[str, tuple[type, ...]] = {
    "id": STR,
    "amount": INT,
    "amount_refunded": INT,
    "currency": STR,
    "refunded": BOOL,
    "payment_intent": STR + OBJ + NULL,
}
INVOICE_FIELDS: dict[str, tuple[type, ...]] = {"id": STR, "amount_paid": INT, "currency": STR}
SUBSCRIPTION_FIELDS: dict[str, tuple[type, ...]] = {
    "id": STR,
    "status": STR,
    "cancel_at_period_end": BOOL,
    "metadata": OBJ + NULL,
}
OBJECTS: dict[str, tuple[str, dict[str, tuple[type, ...]]]] = {
    "invoice.paid": ("invoice", INVOICE_FIELDS),
    "invoice.payment_failed": ("invoice", INVOICE_FIELDS),
    "customer.subscription.updated": ("subscription", SUBSCRIPTION_FIELDS),
    "customer.subscription.deleted": ("subscription", SUBSCRIPTION_FIELDS),
    "checkout.session.completed": ("checkout.session", SESSION_FIELDS),
    "checkout.session.async_payment_succeeded": ("checkout.session", SESSION_FIELDS),
    "checkout.session.async_payment_failed": ("checkout.session", SESSION_FIELDS),
    "checkout.session.expired": ("checkout.session", SESSION_FIELDS),
    "charge.refunded": ("charge", CHARGE_FIELDS),
}
# The longest id and type kept (the events table's columns), with room for a marker.
MAX_ID, MAX_TYPE = 200, 64


class Malformed(Exception):
    """A signed body the webhook cannot act on: its id (Stripe's, or one made from the bytes
    when it has none), its type, and which field is wrong."""

    def __init__(self, event_id: str, event_type: str, field: str) -> None:
        super().__init__(f"{field} is missing or has the wrong type")
        self.event_id = event_id
        self.event_type = event_type
        self.field = field


def read_event(body: bytes) -> dict[str, Any]:
    """The event in a signed body, if every field the webhook reads is there with its type."""
    try:
        event = json.loads(body)
    except ValueError:
        raise Malformed(_body_id(body), "unknown", "the body (not JSON)") from None
    if not isinstance(event, dict):
        raise Malformed(_body_id(body), "unknown", "the body (not a JSON object)")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_ID:
        kind = event_type[:MAX_TYPE] if isinstance(event_type, str) else "unknown"
        raise Malformed(_body_id(body), kind, "id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > MAX_TYPE:
        raise Malformed(event_id, "unknown", "type")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise Malformed(event_id, event_type, "data.object")
    wrong = problem(event_type, data["object"])
    if wrong is not None:
        raise Malformed(event_id, event_type, wrong)
    return event


def problem(event_type: str, obj: Mapping[str, Any]) -> str | None:
    """The first field of a handled event's object that is missing or of the wrong type."""
    if event_type not in OBJECTS:
        return None  # not acted on, so not checked
    kind, fields = OBJECTS[event_type]
    if obj.get("object") != kind:
        return "data.object.object"
    for name, types in fields.items():
        value = obj.get(name)
        if name not in obj or not isinstance(value, types) or _bool_as_int(value, types):
            return f"data.object.{name}"
    intent = obj.get("payment_intent")
    if isinstance(intent, dict) and not isinstance(intent.get("id"), str):
        return "data.object.payment_intent.id"
    metadata = obj.get("metadata") or {}
    if any(not isinstance(v, str) for v in metadata.values()):
        return "data.object.metadata"
    return None


def _bool_as_int(value: Any, types: tuple[type, ...]) -> bool:
    """JSON true is no amount (bool is an int subclass in Python)."""
    return isinstance(value, bool) and bool not in types


def _body_id(body: bytes) -> str:
    """An id for an event that has none: the same bytes redelivered get the same one."""
    return "malformed-" + hashlib.sha256(body).hexdigest()[:40]
