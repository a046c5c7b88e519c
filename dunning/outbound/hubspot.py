"""HubSpot notes through the official ``hubspot-api-client`` SDK (docs/outbound.md).

For each sent reminder (and each reply) one note (developers.hubspot.com "CRM API | Notes":
``POST /crm/v3/objects/notes`` with ``hs_timestamp`` and ``hs_note_body``, associated to the
contact with the HUBSPOT_DEFINED association type 202, note to contact), on the contact whose
``email`` equals the customer's (``POST /crm/v3/objects/contacts/search``, filter ``email EQ``).

Rate limits (developers.hubspot.com "API usage guidelines and limits"): a 429 names its
policy; a burst limit (SECONDLY, TEN_SECONDLY_ROLLING) is waited out for the
``X-HubSpot-RateLimit-Interval-Milliseconds`` it announces (or ``Retry-After``), at most
``MAX_WAIT`` seconds, ``RATE_LIMIT_TRIES`` times; the DAILY limit (or a burst that kept
answering) leaves the delivery to the outbox's backoff.

Authentication (developers.hubspot.com "Private apps" and "OAuth: refresh an access token"):
a private app's access token (``DUNNING_HUBSPOT_ACCESS_TOKEN`` or ``access_token_env`` /
``access_token_block``), or OAuth: ``client_id_env``, ``client_secret_env`` and a refresh
token (``refresh_token_env`` / ``refresh_token_block``), exchanged at ``POST
/oauth/v1/token`` for an access token at the first request and again, once, when HubSpot
answers 401 (the access token expired). A 401 a refresh cannot cure is a dead letter whose
error names the setting to fix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dunning.errors import ConfigError
from dunning.outbound.activities import (
    CRM_EVENTS,
    CrmConfig,
    Facts,
    MissingContact,
    Refused,
    Retry,
    RetryLater,
    call_with_retries,
)

DEFAULT_API_BASE = "https://api.hubapi.com"
#: HubSpot's association type id of a note to a contact (HUBSPOT_DEFINED).
NOTE_TO_CONTACT = 202
RATE_LIMIT_TRIES = 4
#: The longest burst wait honoured inside one delivery (seconds).
MAX_WAIT = 10.0
#: What the outbox waits after a DAILY limit (seconds).
DAILY_WAIT = 3600


class HubSpotTarget:
    """Notes on HubSpot contacts for ``reminder.sent`` and ``reply.received``."""

    name: str = "hubspot"
    events: tuple[str, ...] = CRM_EVENTS

    def __init__(self, config: CrmConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self.base = str(config.get("api_base") or DEFAULT_API_BASE).rstrip("/")
        self._token: str | None = None
        self._client: Any = None
        self.requests = 0

    # -- authentication -------------------------------------------------------------------

    def _oauth(self) -> tuple[str, str, str] | None:
        refresh = self.config.secret("refresh_token", "DUNNING_HUBSPOT_REFRESH_TOKEN")
        if not refresh:
            return None
        client_id = self.config.secret("client_id", "DUNNING_HUBSPOT_CLIENT_ID")
        client_secret = self.config.secret("client_secret", "DUNNING_HUBSPOT_CLIENT_SECRET")
        if not client_id or not client_secret:
            raise ConfigError(
                "[hubspot]: a refresh token needs the OAuth app's DUNNING_HUBSPOT_CLIENT_ID and "
                "DUNNING_HUBSPOT_CLIENT_SECRET (or client_id_env / client_secret_env)"
            )
        return client_id, client_secret, refresh

    def _refresh(self) -> str:
        """A new access token from the refresh token (HubSpot ``POST /oauth/v1/token``)."""
        from hubspot import HubSpot

        oauth = self._oauth()
        assert oauth is not None
        client_id, client_secret, refresh = oauth
        self.requests += 1
        try:
            answer = HubSpot(host=self.base).oauth.tokens_api.create(
                grant_type="refresh_token",
                client_id=client_id,
                client_secret=client_secret,
                refresh_token=refresh,
            )
        except Exception as exc:  # noqa: BLE001 - each SDK package has its own ApiException
            status = getattr(exc, "status", None)
            if status is None or status >= 500 or status == 429:
                raise RetryLater(
                    f"HubSpot's token endpoint failed ({status or 'no answer'})"
                ) from None
            raise Refused(
                f"HubSpot refused the OAuth refresh ({status}); check [hubspot] "
                "refresh_token_env/refresh_token_block (DUNNING_HUBSPOT_REFRESH_TOKEN) and the "
                "app's client id and secret"
            ) from None
        return str(answer.access_token)

    def _api(self, renew: bool = False) -> Any:
        from hubspot import HubSpot

        if self._client is None or renew:
            if self._oauth() is not None:
                self._token = self._refresh()
            else:
                self._token = self.config.secret("access_token", "DUNNING_HUBSPOT_ACCESS_TOKEN")
                if not self._token:
                    raise ConfigError(
                        "[hubspot]: no HubSpot credentials; set DUNNING_HUBSPOT_ACCESS_TOKEN "
                        "(a private app's access token, or access_token_env / "
                        "access_token_block) or an OAuth refresh token (refresh_token_env)"
                    )
            self._client = HubSpot(access_token=self._token, host=self.base)
        return self._client

    # -- calls ----------------------------------------------------------------------------

    def _call(self, what: Callable[[Any], Any]) -> Any:
        """``what(client)`` with HubSpot's rate-limit and expired-token rules applied
        (``call_with_retries``, at most ``RATE_LIMIT_TRIES`` calls)."""

        def client(renew: bool) -> Any:
            api = self._api(renew=True) if renew else self._api()
            self.requests += 1
            return api

        return call_with_retries(
            what,
            client,
            self._classify,
            sleep=self._sleep,
            max_calls=RATE_LIMIT_TRIES,
            exhausted=lambda: RetryLater(f"HubSpot kept answering 429 {RATE_LIMIT_TRIES} times"),
        )

    def _classify(self, exc: Exception, refreshed: bool, _waits: int) -> Retry:
        """What a failed HubSpot call means: a burst 429 waits, an expired OAuth token is
        refreshed once; anything else raises RetryLater or Refused."""
        status = getattr(exc, "status", None)
        headers = {k.lower(): v for k, v in dict(getattr(exc, "headers", None) or {}).items()}
        body = str(getattr(exc, "body", "") or "")
        if status == 429:
            if "DAILY" in body or "daily" in headers.get("x-hubspot-ratelimit-policy", ""):
                raise RetryLater("HubSpot's daily API limit is reached", DAILY_WAIT) from None
            return Retry(wait=_burst_wait(headers))
        if status == 401:
            if self._oauth() is not None and not refreshed:
                return Retry(renew=True)
            raise Refused(
                "HubSpot answered 401 (the access token is expired or invalid); set "
                "DUNNING_HUBSPOT_ACCESS_TOKEN (or [hubspot] access_token_env) to a "
                "valid private app token, or configure an OAuth refresh token"
            ) from None
        if status is None or status >= 500:
            raise RetryLater(f"HubSpot failed ({status or type(exc).__name__})") from None
        raise Refused(f"HubSpot answered {status} {getattr(exc, 'reason', '')}") from None

    def applies(self, facts: Facts) -> bool:
        """Every reminder and reply is logged."""
        return True

    def find_contact(self, email: str) -> str | None:
        """The id of the contact whose ``email`` property equals ``email`` (HubSpot CRM
        search, ``filterGroups`` with ``email EQ``), or None."""
        from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest

        request = PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(filters=[Filter(property_name="email", operator="EQ", value=email)])
            ],
            properties=["email"],
            limit=1,
        )
        page = self._call(lambda c: c.crm.contacts.search_api.do_search(request))
        return str(page.results[0].id) if page.results else None

    def create(self, facts: Facts) -> str:
        """One note associated with the customer's contact (developers.hubspot.com "CRM API |
        Notes": ``hs_timestamp`` is required, association type 202 note to contact); the
        note's id. Raises MissingContact, RetryLater or Refused (no personal data in the
        message)."""
        from hubspot.crm.objects.notes import (
            AssociationSpec,
            PublicAssociationsForObject,
            PublicObjectId,
            SimplePublicObjectInputForCreate,
        )

        if not facts.email:
            raise MissingContact(f"customer {facts.customer_id} has no e-mail address")
        contact = self.find_contact(facts.email)
        if contact is None:
            raise MissingContact(
                f"no HubSpot contact has the e-mail address of customer {facts.customer_id}"
            )
        note = SimplePublicObjectInputForCreate(
            properties={
                "hs_timestamp": facts.at.isoformat().replace("+00:00", "Z"),
                "hs_note_body": facts.summary(),
            },
            associations=[
                PublicAssociationsForObject(
                    to=PublicObjectId(id=contact),
                    types=[
                        AssociationSpec(
                            association_category="HUBSPOT_DEFINED",
                            association_type_id=NOTE_TO_CONTACT,
                        )
                    ],
                )
            ],
        )
        created = self._call(
            lambda c: c.crm.objects.notes.basic_api.create(
                simple_public_object_input_for_create=note
            )
        )
        return str(created.id)


def _burst_wait(headers: dict[str, str]) -> float:
    """Seconds to wait after a burst 429: Retry-After, else the announced interval."""
    for key, scale in (("retry-after", 1.0), ("x-hubspot-ratelimit-interval-milliseconds", 1e-3)):
        value = headers.get(key)
        if value and value.strip().isdigit():
            return min(int(value) * scale, MAX_WAIT)
    return 1.0
