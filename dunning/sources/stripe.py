"""The Stripe source, through the official ``stripe`` SDK (``StripeClient``).

A full sync lists customers, invoices and the ``invoice.payment_failed`` events (Stripe keeps
events 30 days), 100 a page; every later sync reads the Events API since the cursor (the
newest event id seen), oldest first, so a sync with nothing changed costs one request.

Mapping (Stripe's API reference for Customer, Invoice and Event objects):

- customer: ``customer_id`` = Stripe's ``cus_...`` id; email, phone, ``address.country``;
  locale from ``preferred_locales`` and the country; time zone from the country (the source
  settings ``default_country``, ``default_timezone``, ``default_locale`` fill in or override).
- invoice: ``invoice_number`` = ``metadata.invoice_number``, else Stripe's ``number`` (the
  same rule as the Stripe webhook); amount = ``amount_due`` in the currency's minor units;
  issued on its finalization date; due on ``due_date`` (``send_invoice``) or, for
  ``charge_automatically``, on the finalization date (those are due at once); status open,
  paid, void, and ``uncollectible`` as void (written off: no reminders); drafts are skipped;
  ``hosted_invoice_url`` is the payment link.
- payment: each paid ``invoice_payment`` (API 2025-03-31.basil: listed with
  ``expand[]=data.payments``, announced by ``invoice_payment.paid``), keyed by the payment's
  own identity ``stripe:<payment_intent or charge>`` as the Stripe webhook keys it
  (``dunning.tracking.stripe_events``), so a webhook and a sync never count it twice; an
  invoice paid out of band is ``stripe:<invoice id>:out_of_band``. Amounts use Stripe's own
  minor units (``dunning.stripe_currency``).
- failed attempt: each ``invoice.payment_failed`` event, keyed ``stripe:<event id>`` (the
  webhook's key), feeding the payment_failed stage.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from dunning.config import get_settings
from dunning.errors import ConfigError
from dunning.money import is_currency
from dunning.sources.base import Pull, PullProgress, Record, SourceError
from dunning.sources.config import SourceConfig
from dunning.sources.regional import locale_for, zone_for
from dunning.stripe_currency import stripe_from_minor

DEFAULT_API_BASE = "https://api.stripe.com"
PAGE = 100
#: Tries of one request answered 429 (rate limit) before the sync gives up; backoff doubles.
RATE_LIMIT_TRIES = 6
_STATUS = {"open": "open", "paid": "paid", "void": "void", "uncollectible": "void"}
_INVOICE_EVENTS = (
    "invoice.created",
    "invoice.finalized",
    "invoice.updated",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.overdue",
    "invoice.sent",
)


class StripeSource:
    """Customers, invoices, payments and failed attempts of one Stripe account."""

    kind = "stripe"

    def __init__(self, config: SourceConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = config.name
        self.config = config
        self._sleep = sleep
        self.requests = 0

    def _client(self) -> Any:
        import stripe

        key = self.config.secret("api_key", "DUNNING_STRIPE_API_KEY")
        if not key:
            raise ConfigError(
                f"[sources.{self.name}]: no Stripe API key; set "
                "DUNNING_STRIPE_API_KEY (or api_key_env / api_key_block)"
            )
        base = (
            self.config.get("api_base")
            or get_settings().integrations.stripe_api_base
            or DEFAULT_API_BASE
        )
        return stripe.StripeClient(key, base_addresses={"api": base}, max_network_retries=2)

    def _call(self, client: Any, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """The JSON of ``GET path`` with ``params``, retrying 429 answers with doubling backoff.

        ``raw_request`` is the SDK's own request path (authentication, form encoding of
        ``expand[]``, network retries, Stripe's errors as exceptions) without building a
        StripeObject per object, which cost more than the sync itself at 10,000 invoices.
        """
        import stripe

        for attempt in range(RATE_LIMIT_TRIES):
            self.requests += 1
            try:
                return dict(client.raw_request("get", path, **params).data)
            except stripe.RateLimitError:
                self._sleep(min(0.25 * 2**attempt, 8.0))
            except stripe.AuthenticationError:
                raise SourceError(
                    f"source {self.name}: Stripe refused the API key (401); "
                    "check DUNNING_STRIPE_API_KEY"
                ) from None
            except stripe.StripeError as exc:
                raise SourceError(
                    f"source {self.name}: Stripe answered "
                    f"{exc.http_status or 'nothing'}: "
                    f"{exc.user_message or type(exc).__name__}"
                ) from None
        raise SourceError(
            f"source {self.name}: Stripe kept answering 429 (rate limit) "
            f"{RATE_LIMIT_TRIES} times; sync again later"
        )

    def _pages(
        self, client: Any, path: str, params: dict[str, Any]
    ) -> Iterator[list[dict[str, Any]]]:
        """Each page of a list endpoint, newest first, following ``starting_after``."""
        params = {"limit": PAGE, **params}
        while True:
            page = self._call(client, path, params)
            data = page["data"]
            if data:
                yield data
            if not page["has_more"] or not data:
                return
            params = {**params, "starting_after": data[-1]["id"]}

    def check(self) -> str:
        """A line saying Stripe accepted the key."""
        client = self._client()
        page = self._call(client, "/v1/customers", {"limit": 1})
        return f"Stripe answered; customers {'found' if page['data'] else 'none yet'}"

    def pull(self, cursor: str | None, progress: PullProgress | None = None) -> Pull:
        """Everything (``cursor`` None) or the events since the cursor's event id."""
        client = self._client()
        self.requests = 0
        pull = (
            self._events(client, json.loads(cursor)["event"], progress)
            if cursor
            else (self._full(client, progress))
        )
        pull.requests = self.requests
        return pull

    def _full(self, client: Any, progress: PullProgress | None) -> Pull:
        # The newest event first: changes made while listing come in the next sync.
        newest = self._call(client, "/v1/events", {"limit": 1})["data"]
        pull = Pull(
            complete=True, cursor=json.dumps({"event": newest[0]["id"] if newest else None})
        )
        for page in self._pages(client, "/v1/customers", {}):
            for obj in page:
                pull.add("customers", self._customer(obj))
            if progress:
                progress("customers", len(pull.records["customers"]))
        for page in self._pages(client, "/v1/invoices", {"expand": ["data.payments"]}):
            for obj in page:
                self._add_invoice(pull, obj)
            if progress:
                progress("invoices", len(pull.records["invoices"]))
        for page in self._pages(client, "/v1/events", {"type": "invoice.payment_failed"}):
            for event in reversed(page):
                self._add_attempt(pull, event)
        return pull

    def _events(self, client: Any, last: str | None, progress: PullProgress | None) -> Pull:
        """The records the events after ``last`` carry, applied oldest first."""
        events: list[dict[str, Any]] = []
        if last is None:  # the account had no events at the full sync: every event is new
            for older in self._pages(client, "/v1/events", {}):
                events[:0] = reversed(older)
        else:
            params: dict[str, Any] = {"limit": PAGE, "ending_before": last}
            while True:
                answer = self._call(client, "/v1/events", params)
                data = answer["data"]
                events += reversed(data)  # each page is newest first; pages go newer
                if not answer["has_more"] or not data:
                    break
                params = {**params, "ending_before": data[0]["id"]}
        pull = Pull(cursor=json.dumps({"event": events[-1]["id"] if events else last}))
        for event in events:
            obj = event["data"]["object"]
            kind = event["type"]
            if kind in ("customer.created", "customer.updated"):
                pull.add("customers", self._customer(obj))
            elif kind == "invoice_payment.paid":
                self._add_payment(pull, obj, None)
            elif kind == "invoice.deleted":
                pull.add("invoices", Record(obj["id"], {}, deleted=True))
            elif kind in _INVOICE_EVENTS:
                self._add_invoice(pull, obj)
                if kind == "invoice.payment_failed":
                    self._add_attempt(pull, event)
        if progress:
            progress("events", len(events))
        return pull

    def _customer(self, obj: dict[str, Any]) -> Record:
        settings = self.config.get
        country = (obj.get("address") or {}).get("country") or settings("default_country")
        values: dict[str, Any] = {
            "customer_id": obj["id"],
            "name": obj.get("name"),
            "email": obj.get("email"),
            "phone": obj.get("phone"),
            "country": country,
            "timezone": settings("default_timezone") or zone_for(country),
            "locale": settings("default_locale")
            or locale_for(tuple(obj.get("preferred_locales") or ()), country),
        }
        return Record(obj["id"], values)

    def _add_invoice(self, pull: Pull, obj: dict[str, Any]) -> None:
        status = _STATUS.get(obj.get("status") or "")
        if status is None:  # a draft: not issued, nothing to remind of
            return
        customer = obj.get("customer")
        customer_id = customer.get("id") if isinstance(customer, dict) else customer
        currency = str(obj.get("currency") or "").upper()
        transitions = obj.get("status_transitions") or {}
        issued = _date(
            transitions.get("finalized_at") or obj.get("effective_at") or obj.get("created")
        )
        due = _date(obj.get("due_date")) or issued
        number = (obj.get("metadata") or {}).get("invoice_number") or obj.get("number") or obj["id"]
        values = {
            "invoice_number": number,
            "customer_id": customer_id,
            "currency": currency,
            "amount": _amount(obj.get("amount_due"), currency),
            "issued_on": issued,
            "due_on": due,
            "status": status,
            "payment_link": obj.get("hosted_invoice_url"),
        }
        pull.add("invoices", Record(obj["id"], values))
        for payment in (obj.get("payments") or {}).get("data") or []:
            self._add_payment(pull, payment, number)
        if obj.get("paid_out_of_band") and int(obj.get("amount_paid") or 0) > 0:
            self._add_payment(
                pull,
                {
                    "id": f"{obj['id']}:out_of_band",
                    "invoice": obj["id"],
                    "status": "paid",
                    "amount_paid": obj["amount_paid"],
                    "currency": obj.get("currency"),
                    "status_transitions": {"paid_at": transitions.get("paid_at")},
                },
                number,
            )

    def _add_payment(self, pull: Pull, payment: dict[str, Any], number: str | None) -> None:
        """A paid ``invoice_payment`` as a payment record (other statuses carry no money)."""
        if payment.get("status") != "paid" or not int(payment.get("amount_paid") or 0):
            return
        ref = payment.get("payment") or {}
        identity = _id(ref.get("payment_intent")) or _id(ref.get("charge")) or payment["id"]
        currency = str(payment.get("currency") or "").upper()
        at = (payment.get("status_transitions") or {}).get("paid_at") or payment.get("created")
        values: dict[str, Any] = {
            "amount": _amount(payment.get("amount_paid"), currency),
            "paid_at": dt.datetime.fromtimestamp(int(at or 0), dt.UTC),
        }
        if number:
            values["invoice_number"] = number
        invoice = _id(payment.get("invoice"))
        pull.add(
            "payments",
            Record(
                payment["id"], values, external_id=f"stripe:{identity}", invoice_source_id=invoice
            ),
        )

    def _add_attempt(self, pull: Pull, event: dict[str, Any]) -> None:
        obj = event["data"]["object"]
        error = obj.get("last_payment_error") or obj.get("last_finalization_error") or {}
        number = (obj.get("metadata") or {}).get("invoice_number") or obj.get("number") or obj["id"]
        pull.add(
            "payment_attempts",
            Record(
                event["id"],
                {
                    "invoice_number": number,
                    "outcome": "failed",
                    "attempted_at": dt.datetime.fromtimestamp(int(event["created"]), dt.UTC),
                    "failure_code": error.get("decline_code")
                    or error.get("code")
                    or "payment_failed",
                },
                external_id=f"stripe:{event['id']}",
            ),
        )


def _date(stamp: Any) -> dt.date | None:
    return dt.datetime.fromtimestamp(int(stamp), dt.UTC).date() if stamp else None


def _amount(minor: Any, currency: str) -> Any:
    """Stripe's minor units as a decimal amount; left raw (and rejected by validation, naming
    the currency) when the currency is unknown."""
    if minor is None or not is_currency(currency):
        return minor
    return stripe_from_minor(int(minor), currency)


def _id(ref: Any) -> str | None:
    """The id of an expandable Stripe field: a string id, or an expanded object's ``id``."""
    if isinstance(ref, dict):
        ref = ref.get("id")
    return str(ref) if ref else None
