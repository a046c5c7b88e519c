"""State of the fake Xero: one organisation's contacts, invoices and payments.

Objects have the shape of Xero's Accounting API (PascalCase fields, ``/Date(ms+0000)/`` dates,
decimal amounts in the invoice's currency, ``UpdatedDateUTC`` on every object) as described in
Xero's OpenAPI document (``/work/shared/specs/xero_accounting.yaml``: Contact, Invoice,
Payment). Changing an invoice (pay, void, delete) bumps its ``UpdatedDateUTC``, so a client
asking with ``If-Modified-Since`` sees it; the fake's clock only moves forward.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal
from typing import Any


class XeroError(Exception):
    """An answer of the fake in Xero's error shape (status, Type, Message)."""

    def __init__(self, status: int, message: str, kind: str = "ValidationException") -> None:
        super().__init__(message)
        self.status = status
        self.body = {
            "ErrorNumber": 10 if status == 400 else status,
            "Type": kind,
            "Message": message,
        }


def xero_date(when: dt.datetime | dt.date) -> str:
    """Xero's JSON date, ``/Date(<ms since epoch>+0000)/`` (UTC)."""
    if not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)
    return f"/Date({int(when.timestamp() * 1000)}+0000)/"


class XeroFakeState:
    """Contacts, ACCREC invoices and payments of one organisation (thread-safe via ``lock``)."""

    def __init__(self, tenant_id: str = "7f3b2a1c-0d4e-4f5a-9b6c-1d2e3f4a5b6c") -> None:
        self.tenant_id = tenant_id
        self.lock = threading.RLock()
        self.contacts: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        #: History records added through the API, by InvoiceID; answers by Idempotency-Key.
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.idempotent: dict[str, dict[str, Any]] = {}
        self._clock = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        self._numbers = 0
        #: Every API request served (after authentication), and the If-Modified-Since values.
        self.requests = 0
        self.modified_since: list[str | None] = []

    def tick(self) -> dt.datetime:
        """The next moment of the fake's clock: at least the wall clock, always increasing."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self._clock = max(now, self._clock + dt.timedelta(seconds=1))
        return self._clock

    def add_contact(
        self,
        name: str,
        email: str | None = None,
        phone: str | None = None,
        country: str | None = None,
    ) -> dict[str, Any]:
        """The new contact (a customer), with a mobile phone and a street address country."""
        with self.lock:
            cid = str(uuid.uuid4())
            phones = [
                {
                    "PhoneType": "MOBILE",
                    "PhoneNumber": phone or "",
                    "PhoneAreaCode": "",
                    "PhoneCountryCode": "",
                }
            ]
            addresses = [{"AddressType": "STREET", "Country": country or ""}]
            self.contacts[cid] = {
                "ContactID": cid,
                "ContactStatus": "ACTIVE",
                "Name": name,
                "EmailAddress": email or "",
                "Phones": phones,
                "Addresses": addresses,
                "IsCustomer": True,
                "IsSupplier": False,
                "UpdatedDateUTC": xero_date(self.tick()),
                "HasValidationErrors": False,
            }
            return self.contacts[cid]

    def add_invoice(
        self,
        contact_id: str,
        total: str,
        currency: str,
        due: dt.date,
        status: str = "AUTHORISED",
        kind: str = "ACCREC",
        date: dt.date | None = None,
    ) -> dict[str, Any]:
        """The new invoice of ``contact_id`` for ``total`` (a decimal string) in ``currency``.

        A PAID invoice comes with its payment. Raises XeroError for an unknown contact.
        """
        with self.lock:
            contact = self.contacts.get(contact_id)
            if contact is None:
                raise XeroError(404, f"contact {contact_id} not found", "NotFound")
            self._numbers += 1
            iid = str(uuid.uuid4())
            amount = Decimal(total)
            issued = date or due - dt.timedelta(days=30)
            self.invoices[iid] = {
                "Type": kind,
                "InvoiceID": iid,
                "InvoiceNumber": f"INV-{self._numbers:04d}",
                "Reference": "",
                "Contact": {"ContactID": contact_id, "Name": contact["Name"]},
                "Date": xero_date(issued),
                "DueDate": xero_date(due),
                "Status": "AUTHORISED",
                "LineAmountTypes": "Exclusive",
                "CurrencyCode": currency,
                "SubTotal": float(amount),
                "TotalTax": 0.0,
                "Total": float(amount),
                "AmountDue": float(amount),
                "AmountPaid": 0.0,
                "AmountCredited": 0.0,
                "Payments": [],
                "HasAttachments": False,
                "IsDiscounted": False,
                "UpdatedDateUTC": xero_date(self.tick()),
                "HasErrors": False,
            }
            if status == "PAID":
                self.pay(iid)
            elif status != "AUTHORISED":
                self.set_status(iid, status)
            return self.invoices[iid]

    def _invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise XeroError(404, f"invoice {invoice_id} not found", "NotFound")
        return invoice

    def pay(self, invoice_id: str, amount: str | None = None) -> dict[str, Any]:
        """The payment of ``amount`` (default: what is due) on an AUTHORISED invoice; the
        invoice becomes PAID when nothing is left due."""
        with self.lock:
            invoice = self._invoice(invoice_id)
            if invoice["Status"] != "AUTHORISED":
                raise XeroError(400, "Payments can only be made against Authorised invoices")
            due = Decimal(str(invoice["AmountDue"]))
            paid = Decimal(amount) if amount else due
            if paid <= 0 or paid > due:
                raise XeroError(
                    400, "The payment amount must be more than 0 and at most the amount due"
                )
            now = self.tick()
            pid = str(uuid.uuid4())
            payment = {
                "PaymentID": pid,
                "Date": xero_date(now),
                "Amount": float(paid),
                "CurrencyRate": 1.0,
                "PaymentType": "ACCRECPAYMENT",
                "Status": "AUTHORISED",
                "IsReconciled": False,
                "UpdatedDateUTC": xero_date(now),
                "Invoice": {
                    "InvoiceID": invoice_id,
                    "InvoiceNumber": invoice["InvoiceNumber"],
                    "Type": invoice["Type"],
                    "CurrencyCode": invoice["CurrencyCode"],
                },
                "HasValidationErrors": False,
            }
            self.payments[pid] = payment
            left = due - paid
            invoice.update(
                AmountDue=float(left),
                AmountPaid=float(Decimal(str(invoice["AmountPaid"])) + paid),
                UpdatedDateUTC=xero_date(now),
            )
            invoice["Payments"].append(
                {"PaymentID": pid, "Date": payment["Date"], "Amount": float(paid)}
            )
            if left == 0:
                invoice.update(Status="PAID", FullyPaidOnDate=payment["Date"])
            return payment

    def set_status(self, invoice_id: str, status: str) -> dict[str, Any]:
        """The invoice after voiding (``VOIDED``: AUTHORISED and unpaid only) or deleting
        (``DELETED``: Xero deletes only DRAFT/SUBMITTED invoices; the fake allows AUTHORISED
        ones too so a test can see a deletion arrive)."""
        with self.lock:
            invoice = self._invoice(invoice_id)
            if status not in ("VOIDED", "DELETED"):
                raise XeroError(400, f"cannot set status {status}; use VOIDED or DELETED")
            if invoice["Status"] != "AUTHORISED" or invoice["AmountPaid"]:
                raise XeroError(400, "Only unpaid Authorised invoices can be voided or deleted")
            invoice.update(Status=status, AmountDue=0.0, UpdatedDateUTC=xero_date(self.tick()))
            return invoice

    def add_history(
        self, invoice_id: str, details: list[str], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Add history records (``Details``) to an invoice; Xero's answer body. A request
        repeating an ``Idempotency-Key`` gets the first answer and adds nothing (Xero's
        "Idempotent requests"). XeroError 404 for an unknown invoice, 400 for empty Details."""
        with self.lock:
            if idempotency_key and idempotency_key in self.idempotent:
                return self.idempotent[idempotency_key]
            self._invoice(invoice_id)
            if not details or any(not d or len(d) > 2500 for d in details):
                raise XeroError(400, "Details must be 1 to 2500 characters")
            now = self.tick()
            records = [
                {
                    "DateUTCString": now.strftime("%Y-%m-%dT%H:%M:%S"),
                    "DateUTC": xero_date(now),
                    "Details": d,
                    "Changes": "Note",
                    "User": "dunning (API)",
                }
                for d in details
            ]
            self.history.setdefault(invoice_id, []).extend(records)
            answer = {
                "Id": str(uuid.uuid4()),
                "Status": "OK",
                "ProviderName": "dunning fake",
                "DateTimeUTC": xero_date(now),
                "HistoryRecords": records,
            }
            if idempotency_key:
                self.idempotent[idempotency_key] = answer
            return answer
