"""A stateful fake Salesforce speaking the login and REST paths ``simple-salesforce`` calls, for
tests and demos (docs/outbound.md).

simple-salesforce builds every URL as ``https://…`` (the login at
``https://{domain}.salesforce.com/services/Soap/u/{version}``, the REST API at
``https://{instance}/services/data/v{version}/``), so the fake is served over TLS with a
self-signed certificate for 127.0.0.1 (``ca_path``; point ``REQUESTS_CA_BUNDLE`` at it) and
answers the login below ``/sf.salesforce.com/``: configure ``domain = "127.0.0.1:PORT/sf"``
(:attr:`SalesforceFake.domain`).

- ``POST /sf.salesforce.com/services/Soap/u/{version}``: the SOAP ``login`` (username and
  password + security token); answers ``sessionId`` and ``serverUrl`` (this fake), or a SOAP
  fault ``INVALID_LOGIN``.
- ``POST /sf.salesforce.com/services/oauth2/token``: the OAuth 2.0 username-password flow
  (``grant_type=password`` with a connected app's client id and secret).
- ``GET /services/data/v{version}/query?q=SELECT Id FROM Contact WHERE Email = '…' LIMIT n``
- ``POST /services/data/v{version}/sobjects/Task/``: answers ``{"id", "success", "errors"}``.
- Faults: every ``limit_every``-th REST request answers 403 ``REQUEST_LIMIT_EXCEEDED``;
  :meth:`SalesforceFake.expire_sessions` makes every session answer 401
  ``INVALID_SESSION_ID`` until the client logs in again.
- ``GET /_fake/salesforce/tasks``: every Task held, for assertions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import itertools
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from xml.dom import minidom

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_SOQL = re.compile(
    r"^\s*SELECT\s+Id\s+FROM\s+Contact\s+WHERE\s+Email\s*=\s*'((?:[^'\\]|\\.)*)'"
    r"(?:\s+LIMIT\s+(\d+))?\s*$",
    re.IGNORECASE,
)
_UNESCAPE = re.compile(r"\\(.)")


@dataclass
class SalesforceFakeConfig:
    """Knobs: the user's credentials, the connected app, request limits."""

    username: str = "dunning@example.com"
    password: str = "fake-sf-password"  # noqa: S105 - the fake's own value
    security_token: str = "FAKETOKEN"  # noqa: S105 - the fake's own value
    consumer_key: str = "fake-consumer-key"
    consumer_secret: str = "fake-consumer-secret"  # noqa: S105 - the fake's own value
    limit_every: int = 0  # every Nth REST request answers REQUEST_LIMIT_EXCEEDED (0 = never)


@dataclass
class SalesforceFake:
    """A running fake Salesforce: base URL, certificate, contacts, tasks and sessions."""

    base_url: str
    config: SalesforceFakeConfig
    ca_path: str = ""
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)
    logins: int = 0
    counter: Any = field(default_factory=itertools.count)
    answered: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def domain(self) -> str:
        """The ``domain`` setting that makes simple-salesforce log in here."""
        return self.base_url.removeprefix("https://") + "/sf"

    def add_contact(self, email: str) -> str:
        """A Contact with ``email``; its 18-character Id."""
        cid = f"003{len(self.contacts) + 1:015d}"
        self.contacts[cid] = {"Email": email}
        return cid

    def expire_sessions(self) -> None:
        """Every session issued so far answers 401 INVALID_SESSION_ID."""
        self.sessions.clear()

    def reset(self) -> None:
        """Forget contacts, tasks, sessions and counters."""
        self.contacts.clear()
        self.tasks.clear()
        self.sessions.clear()
        self.answered.clear()
        self.logins = 0
        self.counter = itertools.count()


def _new_session(fake: SalesforceFake) -> str:
    session = "00DFAKE0000000001!AQ" + secrets.token_hex(16)
    fake.sessions.add(session)
    fake.logins += 1
    return session


def _soap_fault(code: str, message: str) -> Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring>"
        f"<detail><sf:LoginFault><sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(xml, 500, media_type="text/xml")


def _text(doc: minidom.Document, tag: str) -> str:
    nodes = doc.getElementsByTagName(tag) or doc.getElementsByTagName(f"n1:{tag}")
    child = nodes[0].firstChild if nodes else None
    return str(child.nodeValue or "") if child is not None else ""


async def _soap_login(request: Request) -> Response:
    fake: SalesforceFake = request.app.state.salesforce
    version = request.path_params["version"]
    try:
        doc = minidom.parseString(await request.body())  # noqa: S318 - the fake's own input
    except Exception:  # noqa: BLE001 - any parse error is a bad request
        return _soap_fault("INVALID_LOGIN", "the request is not a SOAP login")
    c = fake.config
    if (_text(doc, "username"), _text(doc, "password")) != (
        c.username,
        c.password + c.security_token,
    ):
        return _soap_fault("INVALID_LOGIN", "Invalid username, password, security token.")
    with fake.lock:
        session = _new_session(fake)
    server = f"{fake.base_url}/services/Soap/u/{version}/00DFAKE0000000001"
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
        f"<passwordExpired>false</passwordExpired><sandbox>false</sandbox>"
        f"<serverUrl>{server}</serverUrl><sessionId>{session}</sessionId>"
        "<userId>005FAKE000000001AAA</userId></result></loginResponse></soapenv:Body>"
        "</soapenv:Envelope>"
    )
    return Response(xml, 200, media_type="text/xml")


async def _oauth_token(request: Request) -> JSONResponse:
    fake: SalesforceFake = request.app.state.salesforce
    form = dict(parse_qsl((await request.body()).decode("utf-8")))
    c = fake.config
    if (form.get("client_id"), form.get("client_secret")) != (c.consumer_key, c.consumer_secret):
        return JSONResponse({"error": "invalid_client_id", "error_description": "client"}, 400)
    if form.get("grant_type") != "password" or (form.get("username"), form.get("password")) != (
        c.username,
        c.password,
    ):
        return JSONResponse(
            {"error": "invalid_grant", "error_description": "authentication failure"}, 400
        )
    with fake.lock:
        session = _new_session(fake)
    return JSONResponse(
        {
            "access_token": session,
            "instance_url": fake.base_url,
            "token_type": "Bearer",
            "issued_at": str(int(dt.datetime.now(dt.UTC).timestamp() * 1000)),
        }
    )


def _guard(request: Request) -> JSONResponse | None:
    fake: SalesforceFake = request.app.state.salesforce
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token not in fake.sessions:
        fake.answered.append(401)
        return JSONResponse(
            [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401
        )
    n = next(fake.counter) + 1
    if fake.config.limit_every and n % fake.config.limit_every == 0:
        fake.answered.append(403)
        return JSONResponse(
            [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            403,
        )
    return None


def _limits(response: JSONResponse, fake: SalesforceFake) -> JSONResponse:
    response.headers["Sforce-Limit-Info"] = f"api-usage={len(fake.answered)}/15000"
    return response


async def _query(request: Request) -> JSONResponse:
    fake: SalesforceFake = request.app.state.salesforce
    refused = _guard(request)
    if refused:
        return refused
    match = _SOQL.match(request.query_params.get("q") or "")
    if not match:
        return JSONResponse(
            [
                {
                    "message": "the fake understands SELECT Id FROM Contact WHERE Email = '…'",
                    "errorCode": "MALFORMED_QUERY",
                }
            ],
            400,
        )
    email = _UNESCAPE.sub(r"\1", match.group(1)).lower()
    limit = int(match.group(2) or 2000)
    version = request.path_params["version"]
    with fake.lock:
        records = [
            {
                "attributes": {
                    "type": "Contact",
                    "url": f"/services/data/v{version}/sobjects/Contact/{cid}",
                },
                "Id": cid,
            }
            for cid, c in fake.contacts.items()
            if c["Email"].lower() == email
        ][:limit]
    fake.answered.append(200)
    return _limits(
        JSONResponse({"totalSize": len(records), "done": True, "records": records}), fake
    )


async def _create_task(request: Request) -> JSONResponse:
    fake: SalesforceFake = request.app.state.salesforce
    refused = _guard(request)
    if refused:
        return refused
    body = await request.json()
    who = body.get("WhoId")
    with fake.lock:
        if who is not None and who not in fake.contacts:
            return JSONResponse(
                [
                    {
                        "message": "Related To ID: id value of incorrect type",
                        "errorCode": "FIELD_INTEGRITY_EXCEPTION",
                        "fields": ["WhoId"],
                    }
                ],
                400,
            )
        tid = f"00T{len(fake.tasks) + 1:015d}"
        fake.tasks[tid] = dict(body)
    fake.answered.append(201)
    return _limits(JSONResponse({"id": tid, "success": True, "errors": []}, 201), fake)


async def _tasks(request: Request) -> JSONResponse:
    fake: SalesforceFake = request.app.state.salesforce
    with fake.lock:
        return JSONResponse(fake.tasks)


def create_salesforce_app(fake: SalesforceFake) -> Starlette:
    """The ASGI app of the fake Salesforce for ``fake``."""
    app = Starlette(
        routes=[
            Route("/sf.salesforce.com/services/Soap/u/{version}", _soap_login, methods=["POST"]),
            Route("/sf.salesforce.com/services/oauth2/token", _oauth_token, methods=["POST"]),
            Route("/services/data/v{version}/query", _query, methods=["GET"]),
            Route("/services/data/v{version}/query/", _query, methods=["GET"]),
            Route("/services/data/v{version}/sobjects/Task/", _create_task, methods=["POST"]),
            Route("/services/data/v{version}/sobjects/Task", _create_task, methods=["POST"]),
            Route("/_fake/salesforce/tasks", _tasks, methods=["GET"]),
        ]
    )
    app.state.salesforce = fake
    return app


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost (``cryptography``), valid a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextlib.contextmanager
def run_salesforce_fake(config: SalesforceFakeConfig | None = None) -> Iterator[SalesforceFake]:
    """A fake Salesforce served over TLS on a free 127.0.0.1 port in a background thread."""
    from dunning.devtools.fakes.server import serve_in_thread

    fake = SalesforceFake("", config or SalesforceFakeConfig())
    with tempfile.TemporaryDirectory(prefix="dunning-fake-sf-") as tmp:
        cert, key = self_signed(Path(tmp))
        fake.ca_path = str(cert)
        with serve_in_thread(
            create_salesforce_app(fake),
            "dunning-fake-salesforce",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        ) as base_url:
            fake.base_url = base_url
            yield fake
