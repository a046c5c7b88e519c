"""Salesforce Tasks through ``simple-salesforce`` (docs/outbound.md).

For each sent reminder (and each reply) one completed Task (Salesforce "Object Reference:
Task": ``Status = 'Completed'``, ``WhoId`` = the Contact, ``Subject``, ``Description``,
``ActivityDate``) on the Contact whose ``Email`` equals the customer's (a SOQL query, ``SELECT
Id FROM Contact WHERE Email = '…' LIMIT 1``, the value escaped by ``format_soql``).

Errors (Salesforce "REST API Developer Guide: Status Codes and Error Responses"):

- ``INVALID_SESSION_ID`` (401, the session expired): simple-salesforce logs in again with the
  configured credentials and repeats the request; if the session is still refused, this
  target logs in once more itself and retries once, then gives up (dead letter naming the
  settings).
- ``REQUEST_LIMIT_EXCEEDED`` (403; the org's API request or concurrency limit): retried
  ``LIMIT_TRIES`` times after ``LIMIT_BACKOFF`` × 2^n seconds, then left to the outbox's
  backoff (at least an hour).

Login: SOAP username + password + security token (``DUNNING_SALESFORCE_USERNAME``,
``DUNNING_SALESFORCE_PASSWORD``, ``DUNNING_SALESFORCE_SECURITY_TOKEN``), or the OAuth 2.0
username-password flow when a connected app's ``consumer_key_env`` / ``consumer_secret_env``
are set; ``domain`` is ``login`` (production, the default), ``test`` (a sandbox) or a My
Domain (``mycompany.my``).
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

DEFAULT_VERSION = "59.0"
LIMIT_TRIES = 3
#: First wait after REQUEST_LIMIT_EXCEEDED (seconds), doubled per try.
LIMIT_BACKOFF = 0.5
#: What the outbox waits when the limit outlasted the tries (seconds).
LIMIT_WAIT = 3600


class SalesforceTarget:
    """Completed Tasks on Salesforce Contacts for ``reminder.sent`` and ``reply.received``."""

    name: str = "salesforce"
    events: tuple[str, ...] = CRM_EVENTS

    def __init__(self, config: CrmConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self._sf: Any = None
        self.logins = 0

    def _login(self) -> Any:
        """A logged-in ``Salesforce`` client (SOAP, or OAuth username-password)."""
        from simple_salesforce import Salesforce
        from simple_salesforce.exceptions import SalesforceAuthenticationFailed

        c = self.config
        username = c.secret("username", "DUNNING_SALESFORCE_USERNAME")
        password = c.secret("password", "DUNNING_SALESFORCE_PASSWORD")
        token = c.secret("security_token", "DUNNING_SALESFORCE_SECURITY_TOKEN")
        key = c.secret("consumer_key", "DUNNING_SALESFORCE_CONSUMER_KEY")
        secret = c.secret("consumer_secret", "DUNNING_SALESFORCE_CONSUMER_SECRET")
        if not username or not password or not (token or (key and secret)):
            raise ConfigError(
                "[salesforce]: set DUNNING_SALESFORCE_USERNAME, DUNNING_SALESFORCE_PASSWORD and "
                "DUNNING_SALESFORCE_SECURITY_TOKEN (or a connected app's "
                "DUNNING_SALESFORCE_CONSUMER_KEY and DUNNING_SALESFORCE_CONSUMER_SECRET)"
            )
        options: dict[str, Any] = {
            "username": username,
            "password": password,
            "domain": str(c.get("domain") or "login"),
            "version": str(c.get("version") or DEFAULT_VERSION),
        }
        if key and secret:
            options.update(consumer_key=key, consumer_secret=secret)
        else:
            options["security_token"] = token
        self.logins += 1
        try:
            return Salesforce(**options)
        except SalesforceAuthenticationFailed as exc:
            raise Refused(
                f"Salesforce refused the login ({exc.code}); check DUNNING_SALESFORCE_USERNAME, "
                "DUNNING_SALESFORCE_PASSWORD and the security token or consumer key/secret "
                "([salesforce] *_env settings) and domain"
            ) from None
        except OSError as exc:
            raise RetryLater(f"Salesforce login failed ({type(exc).__name__})") from None

    def _call(self, what: Callable[[Any], Any]) -> Any:
        """``what(client)`` with the session-refresh and request-limit rules applied
        (``call_with_retries``)."""

        def client(renew: bool) -> Any:
            if self._sf is None or renew:
                self._sf = self._login()
            return self._sf

        return call_with_retries(what, client, _classify, sleep=self._sleep)

    def applies(self, facts: Facts) -> bool:
        """Every reminder and reply is logged."""
        return True

    def find_contact(self, email: str) -> str | None:
        """The Id of the Contact whose Email is ``email``, or None (SOQL via ``query``; the
        value quoted by ``format_soql``, Salesforce "SOQL: Quoted String Escape Sequences")."""
        from simple_salesforce import format_soql

        soql = format_soql("SELECT Id FROM Contact WHERE Email = {} LIMIT 1", email)
        answer = self._call(lambda sf: sf.query(soql))
        records = answer.get("records") or []
        return str(records[0]["Id"]) if records else None

    def create(self, facts: Facts) -> str:
        """One completed Task on the customer's Contact (Salesforce "Object Reference: Task":
        ``WhoId`` a Contact, ``Status`` Completed, ``ActivityDate`` the day, UTC); the Task's
        Id. Raises MissingContact, RetryLater or Refused (no personal data in the message)."""
        if not facts.email:
            raise MissingContact(f"customer {facts.customer_id} has no e-mail address")
        contact = self.find_contact(facts.email)
        if contact is None:
            raise MissingContact(
                f"no Salesforce Contact has the e-mail address of customer {facts.customer_id}"
            )
        task = {
            "WhoId": contact,
            "Subject": facts.subject,
            "Description": facts.summary(),
            "Status": "Completed",
            "ActivityDate": facts.at.date().isoformat(),
            "TaskSubtype": "Task",
        }
        created = self._call(lambda sf: sf.Task.create(task))
        return str(created["id"])


def _codes(content: Any) -> list[str]:
    """The ``errorCode`` values of a Salesforce error body (a list of error objects)."""
    if isinstance(content, list):
        return [str(e.get("errorCode")) for e in content if isinstance(e, dict)]
    if isinstance(content, dict) and content.get("errorCode"):
        return [str(content["errorCode"])]
    return []


def _classify(exc: Exception, relogged: bool, tries: int) -> Retry:
    """What a failed Salesforce call means: an expired session logs in again once,
    REQUEST_LIMIT_EXCEEDED waits ``LIMIT_BACKOFF * 2**tries`` (``LIMIT_TRIES`` times); anything
    else raises RetryLater or Refused (an unknown error is raised as it is)."""
    from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

    if isinstance(exc, SalesforceExpiredSession):
        if relogged:
            raise Refused(
                "Salesforce kept answering INVALID_SESSION_ID after a new login; check "
                "the [salesforce] credentials and the user's API access"
            ) from None
        return Retry(renew=True)
    if isinstance(exc, SalesforceError):
        codes = _codes(exc.content)
        if "REQUEST_LIMIT_EXCEEDED" in codes:
            if tries >= LIMIT_TRIES:
                raise RetryLater(
                    "Salesforce REQUEST_LIMIT_EXCEEDED outlasted the retries", LIMIT_WAIT
                ) from None
            return Retry(wait=LIMIT_BACKOFF * 2**tries)
        if exc.status >= 500:
            raise RetryLater(f"Salesforce failed ({exc.status})") from None
        raise Refused(
            f"Salesforce answered {exc.status} {', '.join(codes) or ''}".strip()
        ) from None
    if isinstance(exc, OSError):
        raise RetryLater(f"Salesforce request failed ({type(exc).__name__})") from None
    raise exc
