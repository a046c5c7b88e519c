"""The Xero source, through the official ``xero-python`` SDK (``AccountingApi``).

Reads one organisation (``tenant_id``): contacts that are customers, ACCREC (sales) invoices
and their payments, 100 a page. Every later sync asks with ``If-Modified-Since`` = the newest
``UpdatedDateUTC`` seen per record type, so a sync with nothing changed costs one request per
record type (three). Xero answers 429 with ``Retry-After`` when a rate limit is hit (60 calls a
minute, 5,000 a day per organisation; developer.xero.com "OAuth 2.0 API limits"): the request
is retried after that many seconds, at most ``RATE_LIMIT_TRIES`` times.

Authentication (developer.xero.com "Custom connections" and "Refresh access token"): a custom
connection's client credentials (``grant_type=client_credentials``), or, when
``refresh_token_block`` names a Prefect Secret block, that refresh token; Xero refresh tokens
are single use, so the new one is saved to the block before the API is called.

Mapping (Xero's OpenAPI document, schemas Contact, Invoice, Payment):

- customer: ``customer_id`` = ContactID; Name, EmailAddress, the MOBILE (else DEFAULT) phone,
  the STREET (else POBOX) address country; time zone and locale from the country unless the
  source settings say otherwise.
- invoice: ``invoice_number`` = InvoiceNumber (else InvoiceID); amount = AmountPaid +
  AmountDue (the total less credit notes: the payments then leave AmountDue as the balance),
  VOIDED ones keep Total; amounts are decimals in the invoice's currency (Xero's own unit, not
  minor units) checked against the one currency table by validation; Date, DueDate; status
  AUTHORISED -> open, PAID -> paid, VOIDED -> void, DELETED -> deleted here; DRAFT and
  SUBMITTED are not issued yet and skipped; the payment link is the OnlineInvoiceUrl when
  ``payment_links = "online_invoice"`` (one extra request per open invoice that changed).
- payment: each AUTHORISED ACCRECPAYMENT, keyed ``xero:<PaymentID>``, its invoice found by
  InvoiceID; paid at its Date (Xero records a day, taken as midnight UTC).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from dunning.config import get_settings
from dunning.errors import ConfigError
from dunning.sources.base import Pull, PullProgress, Record, SourceError
from dunning.sources.config import SourceConfig
from dunning.sources.regional import locale_for, zone_for

DEFAULT_API_BASE = "https://api.xero.com/api.xro/2.0"
DEFAULT_IDENTITY_BASE = "https://identity.xero.com"
PAGE = 100
#: Tries of one request answered 429 before the sync gives up; each waits Retry-After.
RATE_LIMIT_TRIES = 5
#: The longest Retry-After honoured (Xero's daily limit answers with hours: sync later).
MAX_RETRY_AFTER = 60.0
_STATUS = {"AUTHORISED": "open", "PAID": "paid", "VOIDED": "void"}
_KINDS = ("contacts", "invoices", "payments")


class XeroSource:
    """Customers, ACCREC invoices and payments of one Xero organisation."""

    kind = "xero"

    def __init__(self, config: SourceConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.name = config.name
        self.config = config
        self._sleep = sleep
        self.requests = 0
        self.tenant_id = str(config.get("tenant_id"))

    def _api(self) -> Any:
        """An AccountingApi holding a fresh access token (client credentials or refresh)."""
        from xero_python.accounting import AccountingApi
        from xero_python.api_client import ApiClient
        from xero_python.api_client.configuration import Configuration
        from xero_python.api_client.oauth2 import OAuth2Token, TokenApi

        client_id = self.config.secret("client_id", "DUNNING_XERO_CLIENT_ID")
        client_secret = self.config.secret("client_secret", "DUNNING_XERO_CLIENT_SECRET")
        if not client_id or not client_secret:
            raise ConfigError(
                f"[sources.{self.name}]: no Xero app credentials; set "
                "DUNNING_XERO_CLIENT_ID and DUNNING_XERO_CLIENT_SECRET (or "
                "client_id_env / client_secret_env, or the _block settings)"
            )
        identity = (
            self.config.get("identity_base")
            or get_settings().integrations.xero_identity_base
            or DEFAULT_IDENTITY_BASE
        ).rstrip("/")
        base = (
            self.config.get("api_base")
            or get_settings().integrations.xero_api_base
            or DEFAULT_API_BASE
        ).rstrip("/")
        holder: dict[str, Any] = {}
        client = ApiClient(
            Configuration(oauth2_token=OAuth2Token(client_id, client_secret)),
            oauth2_token_getter=lambda: holder["token"],
            oauth2_token_saver=lambda token: holder.update(token=token),
        )
        _own_rate_limits(client)
        tokens = TokenApi(client, client_id, client_secret)
        # Instance attributes: the SDK's class-level identity URLs stay untouched.
        tokens.client_credentials_token_url = tokens.refresh_token_url = f"{identity}/connect/token"
        block = self.config.get("refresh_token_block")
        self.requests += 1
        try:
            if block:
                token = self._refresh(tokens, str(block))
            else:
                token = tokens.get_client_credentials_token(False)
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - the SDK raises bare Exception on non-200
            status = getattr(exc, "status", None) or "an error"
            raise SourceError(
                f"source {self.name}: Xero's identity server refused the "
                f"credentials ({status}); check the client id and secret"
                + (" and the refresh token block" if block else "")
            ) from None
        token["scope"] = str(token.get("scope") or "").split()
        # No expires_at: the SDK then never refreshes by itself (one sync is far shorter than
        # the token's 30 minutes, and a refresh here must rotate the block, not the SDK).
        token.pop("expires_at", None)
        client.set_oauth2_token(token)
        return AccountingApi(client, base_url=base)

    def _refresh(self, tokens: Any, block: str) -> dict[str, Any]:
        """A new token from the refresh token in ``block``; the rotated refresh token is
        saved to the block first (Xero refresh tokens work once)."""
        from prefect.blocks.system import Secret

        from dunning.sources.config import load_secret_block

        current = load_secret_block(block, f"[sources.{self.name}] refresh_token_block")
        token: dict[str, Any] = tokens.refresh_token(current, [])
        rotated = token.get("refresh_token")
        if rotated and rotated != current:
            Secret(value=rotated).save(block, overwrite=True)
        return token

    def _call(self, method: Callable[..., Any], **params: Any) -> Any:
        """``method(tenant, **params)``, waiting out 429 answers (Retry-After, bounded)."""
        from xero_python.exceptions import ApiException, RateLimitException

        for _attempt in range(RATE_LIMIT_TRIES):
            self.requests += 1
            try:
                return method(self.tenant_id, **params)
            except RateLimitException as exc:
                wait = _retry_after((exc.headers or {}).get("Retry-After"))
                if wait > MAX_RETRY_AFTER:
                    raise SourceError(
                        f"source {self.name}: Xero's rate limit "
                        f"({exc.rate_limit or 'unknown'}) asks to wait "
                        f"{wait:.0f} s; sync again later"
                    ) from None
                self._sleep(wait)
            except ApiException as exc:
                advice = {
                    401: "; the access token was refused: check the app's credentials",
                    403: "; check tenant_id and that the app is connected to it",
                }
                raise SourceError(
                    f"source {self.name}: Xero answered {exc.status} "
                    f"{exc.reason or ''}{advice.get(exc.status or 0, '')}"
                ) from None
        raise SourceError(
            f"source {self.name}: Xero kept answering 429 (rate limit) "
            f"{RATE_LIMIT_TRIES} times; sync again later"
        )

    def check(self) -> str:
        """A line saying Xero accepted the credentials and the tenant."""
        api = self._api()
        page = self._call(api.get_contacts, page=1, page_size=1)
        return (
            f"Xero answered for tenant {self.tenant_id}; contacts "
            f"{'found' if page.contacts else 'none yet'}"
        )

    def pull(self, cursor: str | None, progress: PullProgress | None = None) -> Pull:
        """Everything (``cursor`` None) or what changed since the cursor's times."""
        self.requests = 0
        api = self._api()
        since: dict[str, str | None] = json.loads(cursor) if cursor else {}
        pull = Pull(complete=cursor is None)
        newest = dict(since)
        listers = {
            "contacts": (api.get_contacts, {}),
            "invoices": (api.get_invoices, {"where": 'Type=="ACCREC"'}),
            "payments": (api.get_payments, {}),
        }
        for kind in _KINDS:
            method, extra = listers[kind]
            for obj in self._list(method, kind, since.get(kind), extra):
                stamp = _utc(obj.updated_date_utc)
                if stamp and (newest.get(kind) is None or stamp.isoformat() > str(newest[kind])):
                    newest[kind] = stamp.isoformat()
                self._add(api, pull, kind, obj)
            if progress:
                progress(kind, sum(len(v) for v in pull.records.values()))
        pull.cursor = json.dumps(newest, sort_keys=True)
        pull.requests = self.requests
        return pull

    def _list(
        self, method: Callable[..., Any], kind: str, since: str | None, extra: dict[str, Any]
    ) -> list[Any]:
        """Every object of ``kind`` modified after ``since`` (ISO 8601), page by page."""
        params: dict[str, Any] = {"page_size": PAGE, **extra}
        if since:
            params["if_modified_since"] = dt.datetime.fromisoformat(since)
        out: list[Any] = []
        page = 1
        while True:
            answer = self._call(method, page=page, **params)
            items = getattr(answer, kind) or []
            out += items
            if len(items) < PAGE:
                return out
            page += 1

    def _add(self, api: Any, pull: Pull, kind: str, obj: Any) -> None:
        if kind == "contacts":
            if obj.is_customer is not False:
                pull.add("customers", self._customer(obj))
        elif kind == "invoices":
            self._add_invoice(api, pull, obj)
        elif _enum(obj.payment_type) == "ACCRECPAYMENT" and _enum(obj.status) == "AUTHORISED":
            invoice = obj.invoice
            pull.add(
                "payments",
                Record(
                    str(obj.payment_id),
                    {"amount": _decimal(obj.amount), "paid_at": _midnight(obj.date)},
                    external_id=f"xero:{obj.payment_id}",
                    invoice_source_id=str(invoice.invoice_id) if invoice else None,
                ),
            )

    def _customer(self, obj: Any) -> Record:
        settings = self.config.get
        country = _country(obj.addresses) or settings("default_country")
        values: dict[str, Any] = {
            "customer_id": str(obj.contact_id),
            "name": obj.name,
            "email": obj.email_address or None,
            "phone": _phone(obj.phones),
            "country": country,
            "timezone": settings("default_timezone") or zone_for(country),
            "locale": settings("default_locale") or locale_for((), country),
        }
        return Record(str(obj.contact_id), values)

    def _add_invoice(self, api: Any, pull: Pull, obj: Any) -> None:
        if _enum(obj.type) != "ACCREC":
            return
        status = _enum(obj.status)
        if status == "DELETED":
            pull.add("invoices", Record(str(obj.invoice_id), {}, deleted=True))
            return
        if status not in _STATUS:  # DRAFT, SUBMITTED: not issued, nothing to remind of
            return
        amount = (
            _decimal(obj.total)
            if status == "VOIDED"
            else _decimal(obj.amount_paid or 0) + _decimal(obj.amount_due or 0)
        )
        link = None
        if status == "AUTHORISED" and self.config.get("payment_links") == "online_invoice":
            online = self._call(api.get_online_invoice, invoice_id=str(obj.invoice_id))
            urls = [o.online_invoice_url for o in online.online_invoices or []]
            link = urls[0] if urls else None
        values = {
            "invoice_number": obj.invoice_number or str(obj.invoice_id),
            "customer_id": str(obj.contact.contact_id) if obj.contact else None,
            "currency": _enum(obj.currency_code),
            "amount": amount,
            "issued_on": obj.date,
            "due_on": obj.due_date or obj.date,
            "status": _STATUS[status],
            "payment_link": link,
        }
        pull.add("invoices", Record(str(obj.invoice_id), values))


def _own_rate_limits(client: Any) -> None:
    """Nothing; makes 429 answers reach ``XeroSource._call``. urllib3 (under the SDK) would
    otherwise retry a 429 with Retry-After by itself, sleeping unbounded by our limits and
    unseen by the sync; network errors are still retried twice there."""
    import urllib3

    pool = client.rest_client.pool_manager
    retries = urllib3.Retry(
        total=2, status_forcelist=(), respect_retry_after_header=False, raise_on_status=False
    )
    urlopen = pool.urlopen

    def urlopen_with_our_retries(method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
        kw.setdefault("retries", retries)
        return urlopen(method, url, redirect=redirect, **kw)

    pool.urlopen = urlopen_with_our_retries


def _enum(value: Any) -> str | None:
    """The text of an SDK enum member (or of a plain string)."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _decimal(value: Any) -> Decimal:
    """Xero's decimal amount exactly (the SDK may hand a float: read its shortest repr)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _utc(when: Any) -> dt.datetime | None:
    if not isinstance(when, dt.datetime):
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _midnight(day: Any) -> Any:
    if isinstance(day, dt.datetime):
        return _utc(day)
    if isinstance(day, dt.date):
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return day  # missing: validation names paid_at


def _retry_after(value: Any) -> float:
    """Seconds from a Retry-After header (Xero sends whole seconds); 1 when absent or odd."""
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 1.0


def _phone(phones: Any) -> str | None:
    """The MOBILE (else DEFAULT) number as ``+<country><area><number>`` when Xero has the
    country code, else as typed (validation reads it in the customer's country)."""
    by_type = {_enum(p.phone_type): p for p in phones or [] if p.phone_number}
    phone = by_type.get("MOBILE") or by_type.get("DEFAULT")
    if phone is None:
        return None
    number = f"{phone.phone_area_code or ''}{phone.phone_number}".replace(" ", "")
    code = (phone.phone_country_code or "").lstrip("+")
    return f"+{code}{number.lstrip('0')}" if code else number


def _country(addresses: Any) -> str | None:
    """The STREET (else POBOX) address country as ISO alpha-2: Xero stores free text, so a
    two-letter code is taken as is and an English country name is looked up."""
    by_type = {_enum(a.address_type): a for a in addresses or [] if a.country}
    address = by_type.get("STREET") or by_type.get("POBOX")
    if address is None:
        return None
    text = str(address.country).strip()
    if len(text) == 2:
        return text.upper()
    return _country_codes().get(text.casefold(), text)


def _country_codes() -> dict[str, str]:
    from babel import Locale

    names = Locale.parse("en").territories
    return {
        str(name).casefold(): code
        for code, name in names.items()
        if len(code) == 2 and code.isalpha()
    }
