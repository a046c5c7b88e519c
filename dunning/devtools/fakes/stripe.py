"""State of the fake Stripe: customers, invoices and the event stream, with Stripe's shapes.

Objects are built from Stripe's own fixtures (``stripe_fixtures3.json``, MIT, from Stripe's
openapi repository, in the project's ``shared/specs``) so every field the SDK and our source
read has the real name and type. Lists behave like Stripe's: newest first, ``limit`` 1-100,
``starting_after`` pages towards older objects, ``ending_before`` towards newer ones.
Every change (create, finalize, pay, void, mark uncollectible, delete) appends an event, as
Stripe's Events API does.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from dunning.errors import ConfigError

FIXTURES_NAME = "stripe_fixtures3.json"
INVOICE_STATUSES = ("draft", "open", "paid", "void", "uncollectible")


def fixtures_path() -> Path:
    """Where Stripe's fixtures are: DUNNING_STRIPE_FIXTURES, else ``shared/specs`` beside the
    checkout (as CI lays it out) or /work/shared/specs."""
    given = os.environ.get("DUNNING_STRIPE_FIXTURES")
    candidates = [Path(given)] if given else []
    root = Path(__file__).resolve().parents[3]
    candidates += [
        root.parent / "shared" / "specs" / FIXTURES_NAME,
        Path("/work/shared/specs") / FIXTURES_NAME,
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(
        f"the fake Stripe needs Stripe's fixtures ({FIXTURES_NAME}); set "
        "DUNNING_STRIPE_FIXTURES to its path"
    )


@lru_cache(maxsize=1)
def _templates() -> dict[str, str]:
    resources = json.loads(fixtures_path().read_text(encoding="utf-8"))["resources"]
    # Kept as JSON text: parsing it is a cheaper fresh copy than copy.deepcopy.
    return {
        k: json.dumps(resources[k]) for k in ("customer", "invoice", "event", "invoice_payment")
    }


def template(kind: str) -> dict[str, Any]:
    """A fresh copy of Stripe's fixture object of ``kind`` (customer, invoice, event,
    invoice_payment)."""
    result: dict[str, Any] = json.loads(_templates()[kind])
    return result


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(obj))
    return result


class StripeError(Exception):
    """An error answered in Stripe's JSON shape: ``{"error": {type, code, message, param}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "error": {
                "type": type_,
                "message": message,
                **({"code": code} if code else {}),
                **({"param": param} if param else {}),
            }
        }


class StripeFakeState:
    """Thread-safe objects and events of one fake Stripe account."""

    def __init__(self, start: int = 1_764_000_000) -> None:
        self.lock = threading.RLock()
        self._clock = start  # Unix seconds; advances one second per change
        self._ids = itertools.count(1)
        self._numbers = itertools.count(1)  # invoice numbers, in finalization order
        self.customers: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        #: invoice id -> its invoice_payment objects (API 2025-03-31.basil and later)
        self.payments: dict[str, list[dict[str, Any]]] = {}
        self.requests = 0  # API requests answered (admin calls excluded)

    def _now(self) -> int:
        self._clock += 1
        return self._clock

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):014d}FAKE"

    def _emit(self, type_: str, obj: dict[str, Any]) -> None:
        event = template("event")
        event.update(
            id=self._id("evt"),
            type=type_,
            created=self._clock,
            api_version=None,
            data={"object": _copy(obj)},
            pending_webhooks=0,
            request={"id": None, "idempotency_key": None},
        )
        self.events.append(event)

    def add_customer(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        country: str | None = None,
        preferred_locales: list[str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The new customer (event ``customer.created``)."""
        with self.lock:
            obj = template("customer")
            obj.update(
                id=self._id("cus"),
                created=self._now(),
                name=name,
                email=email,
                phone=phone,
                preferred_locales=list(preferred_locales or []),
                metadata=dict(metadata or {}),
                discount=None,
                shipping=None,
            )
            obj["address"] = {**obj["address"], "country": country}
            self.customers[obj["id"]] = obj
            self._emit("customer.created", obj)
            return _copy(obj)

    def add_invoice(
        self,
        customer: str,
        amount: int,
        currency: str = "usd",
        *,
        status: str = "open",
        due_date: int | None = None,
        collection_method: str = "send_invoice",
        number: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The new invoice of ``amount`` minor units, finalized unless ``status`` is draft
        (events ``invoice.created`` and ``invoice.finalized``; then ``invoice.paid`` etc.)."""
        with self.lock:
            if customer not in self.customers:
                raise StripeError(
                    404,
                    f"No such customer: '{customer}'",
                    code="resource_missing",
                    param="customer",
                )
            cust = self.customers[customer]
            obj = template("invoice")
            created = self._now()
            obj.update(
                id=self._id("in"),
                created=created,
                customer=customer,
                currency=currency,
                amount_due=amount,
                amount_paid=0,
                amount_remaining=amount,
                total=amount,
                subtotal=amount,
                status="draft",
                number=None,
                metadata=dict(metadata or {}),
                collection_method=collection_method,
                due_date=due_date if collection_method == "send_invoice" else None,
                customer_email=cust["email"],
                customer_name=cust["name"],
                customer_phone=cust["phone"],
                hosted_invoice_url=None,
                attempt_count=0,
                attempted=False,
                last_finalization_error=None,
                next_payment_attempt=None,
                effective_at=None,
                from_invoice=None,
                status_transitions={
                    "finalized_at": None,
                    "marked_uncollectible_at": None,
                    "paid_at": None,
                    "voided_at": None,
                },
            )
            obj["lines"] = {**obj["lines"], "data": [], "url": f"/v1/invoices/{obj['id']}/lines"}
            self.invoices[obj["id"]] = obj
            self._emit("invoice.created", obj)
            if status != "draft":
                self._finalize(obj, number)
            if status in ("paid", "void", "uncollectible"):
                {"paid": self._pay, "void": self._void, "uncollectible": self._uncollectible}[
                    status
                ](obj)
            return _copy(obj)

    def _invoice(self, invoice_id: str) -> dict[str, Any]:
        obj = self.invoices.get(invoice_id)
        if obj is None:
            raise StripeError(
                404, f"No such invoice: '{invoice_id}'", code="resource_missing", param="id"
            )
        return obj

    def _finalize(self, obj: dict[str, Any], number: str | None = None) -> None:
        at = self._now()
        obj.update(
            status="open",
            number=number or f"FAKE-{next(self._numbers):06d}",
            effective_at=at,
            hosted_invoice_url=f"https://invoice.stripe.com/i/fake/{obj['id']}",
        )
        obj["status_transitions"]["finalized_at"] = at
        self._emit("invoice.finalized", obj)

    def _require(self, obj: dict[str, Any], allowed: tuple[str, ...], action: str) -> None:
        if obj["status"] not in allowed:
            raise StripeError(
                400,
                f"You can only {action} an invoice whose status is "
                f"{' or '.join(allowed)}; this one is {obj['status']}.",
                code="invoice_unexpected_status",
            )

    def _pay(self, obj: dict[str, Any]) -> None:
        at = self._now()
        payment = template("invoice_payment")
        payment.update(
            id=self._id("inpay"),
            amount_paid=obj["amount_remaining"],
            amount_requested=obj["amount_remaining"],
            created=at,
            currency=obj["currency"],
            invoice=obj["id"],
            livemode=False,
            status="paid",
            is_default=True,
            payment={"type": "payment_intent", "payment_intent": self._id("pi")},
            status_transitions={"canceled_at": None, "paid_at": at},
        )
        self.payments.setdefault(obj["id"], []).append(payment)
        obj.update(
            status="paid",
            amount_paid=obj["amount_due"],
            amount_remaining=0,
            attempted=True,
            attempt_count=obj["attempt_count"] + 1,
        )
        obj["status_transitions"]["paid_at"] = at
        # Basil's order: the invoice events carry no payment; invoice_payment.paid names it.
        self._emit("invoice.payment_succeeded", obj)
        self._emit("invoice.paid", obj)
        self._emit("invoice_payment.paid", payment)

    def _void(self, obj: dict[str, Any]) -> None:
        obj["status"] = "void"
        obj["status_transitions"]["voided_at"] = self._now()
        self._emit("invoice.voided", obj)

    def _uncollectible(self, obj: dict[str, Any]) -> None:
        obj["status"] = "uncollectible"
        obj["status_transitions"]["marked_uncollectible_at"] = self._now()
        self._emit("invoice.marked_uncollectible", obj)

    def act(self, invoice_id: str, action: str) -> dict[str, Any]:
        """The invoice after ``action`` (finalize, pay, void, mark_uncollectible, fail_payment),
        with the events Stripe emits for it; StripeError when its status does not allow it."""
        with self.lock:
            obj = self._invoice(invoice_id)
            if action == "finalize":
                self._require(obj, ("draft",), "finalize")
                self._finalize(obj)
            elif action == "pay":
                self._require(obj, ("open", "uncollectible"), "pay")
                self._pay(obj)
            elif action == "void":
                self._require(obj, ("open", "uncollectible"), "void")
                self._void(obj)
            elif action == "mark_uncollectible":
                self._require(obj, ("open",), "mark uncollectible")
                self._uncollectible(obj)
            elif action == "fail_payment":  # a declined card: what a charge attempt reports
                self._require(obj, ("open",), "attempt payment on")
                self._now()
                obj.update(attempted=True, attempt_count=obj["attempt_count"] + 1)
                self._emit("invoice.payment_failed", obj)
            else:
                raise StripeError(404, f"Unrecognized request URL: {action}")
            return _copy(obj)

    def delete_invoice(self, invoice_id: str) -> dict[str, Any]:
        """The deleted-invoice object (drafts only, as in Stripe; event invoice.deleted)."""
        with self.lock:
            obj = self._invoice(invoice_id)
            self._require(obj, ("draft",), "delete")
            del self.invoices[invoice_id]
            self._now()
            self._emit("invoice.deleted", obj)
            return {"id": invoice_id, "object": "invoice", "deleted": True}

    def page(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """A list object of ``kind`` (customers, invoices, events) for the request ``params``."""
        with self.lock:
            items = {
                "customers": list(self.customers.values()),
                "invoices": list(self.invoices.values()),
                "events": self.events,
            }[kind]
            items = [i for i in reversed(items) if _matches(kind, i, params)]  # newest first
            limit = _limit(params.get("limit"))
            after, before = params.get("starting_after"), params.get("ending_before")
            if after:
                items = items[_position(items, after, "starting_after") + 1 :]
                chosen = items[:limit]
                more = len(items) > limit
            elif before:
                items = items[: _position(items, before, "ending_before")]
                chosen = items[-limit:]
                more = len(items) > limit
            else:
                chosen, more = items[:limit], len(items) > limit
            # No copies: the HTTP endpoint serialises the answer while it holds the lock.
            expand = params.get("expand", []) if kind == "invoices" else []
            data = [dict(i) if expand else i for i in chosen]
            for inv in data if expand else []:
                if "data.customer" in expand:
                    inv["customer"] = self.customers.get(inv["customer"])
                if "data.payments" in expand:  # includable since basil
                    listed = self.payments.get(inv["id"], [])
                    inv["payments"] = {
                        "object": "list",
                        "data": listed,
                        "has_more": False,
                        "url": f"/v1/invoice_payments?invoice={inv['id']}",
                    }
            return {"object": "list", "data": data, "has_more": more, "url": f"/v1/{kind}"}

    def retrieve(self, kind: str, object_id: str) -> dict[str, Any]:
        """One customer or invoice; StripeError 404 (resource_missing) when unknown."""
        with self.lock:
            store = self.customers if kind == "customers" else self.invoices
            if object_id not in store:
                label = kind.rstrip("s")
                raise StripeError(
                    404, f"No such {label}: '{object_id}'", code="resource_missing", param="id"
                )
            return _copy(store[object_id])


def _limit(value: Any) -> int:
    if value is None:
        return 10
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", param="limit") from None
    if not 1 <= limit <= 100:
        raise StripeError(400, "This value must be between 1 and 100 (inclusive).", param="limit")
    return limit


def _position(items: list[dict[str, Any]], object_id: str, param: str) -> int:
    for i, item in enumerate(items):
        if item["id"] == object_id:
            return i
    raise StripeError(400, f"No such object: '{object_id}'", code="resource_missing", param=param)


def _matches(kind: str, item: dict[str, Any], params: dict[str, Any]) -> bool:
    if kind == "invoices":
        status, customer = params.get("status"), params.get("customer")
        return (not status or item["status"] == status) and (
            not customer or item["customer"] == customer
        )
    if kind == "events":
        types = params.get("types") or ([params["type"]] if params.get("type") else [])
        return not types or any(_type_matches(item["type"], t) for t in types)
    return True


def _type_matches(event_type: str, pattern: str) -> bool:
    # Stripe accepts a trailing wildcard: invoice.* matches every invoice event.
    return event_type.startswith(pattern[:-1]) if pattern.endswith("*") else event_type == pattern
