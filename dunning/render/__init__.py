"""Message composition: ReminderData + templates -> OutboundMessage.

Layout of templates/ (see docs/delivery.md):
    <stage>/email.<lang>.subject.txt   subject line
    <stage>/email.<lang>.txt           the stage's own paragraph(s) of the email
    <stage>/sms.<lang>.txt             SMS body (the opt-out hint is appended by compose)
    <stage>/voice.<lang>.txt           what a reminder call says (dunning.render.voice)
    _customer/email.<lang>[.subject].txt, _customer/sms.<lang>.txt
                                       one message listing several invoices of a customer
                                       (policy consolidate = "customer"), worded by the most
                                       advanced stage among them (``lead_stage``)
    _voice/<lang>.txt                  a call's spoken phrases (menu, voicemail, replies)
    _layout/email.txt, email.html      the whole email around them: greeting, body, invoice
                                       summary (_layout/summary.*), pay link/button, tone
                                       line, signature, footer; HTML autoescaped
    _shared/<lang>.txt                 localized phrases (macros), passed as ``s``
Words, dates and amounts of a message come from one resolved locale (dunning.locales).
Repeat stages (final_notice_r2, ...) use their base stage's templates. Customer data is always
passed as render context, never as template source, and the environment is sandboxed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dunning.config import get_settings
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage, ReminderData
from dunning.errors import TemplateError
from dunning.locales import (
    FALLBACK_LANGUAGE,
    ResolvedLocale,
    babel_locale,
    resolve_locale,
)
from dunning.locales import locale_candidates as locale_candidates  # re-exported for callers
from dunning.money import format_money
from dunning.policy.model import Policy, base_stage, repeat_number
from dunning.sms import count_segments, plain_text
from dunning.summary import (
    brand_colors,
    currency_totals,
    format_day,
    invoice_items,
    safe_link,
    summary_row,
)

DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
#: The templates folder of a message that lists several invoices (one message per customer).
CONSOLIDATED = "_customer"


@lru_cache(maxsize=1)
def _default_policy() -> Policy:
    from dunning.policy.loader import load_policy

    return load_policy()


def stage_rank(stage: str, policy: Policy | None = None) -> tuple[int, int]:
    """How advanced ``stage`` is in ``policy`` (None: the default policy): (rank of its base
    stage, repeat number), ``Policy.stage_rank``; the loaded policy's ladder is the one source
    of the order, so a custom ladder's stages rank by their place in it."""
    return (policy or _default_policy()).stage_rank(stage)


def lead_reminder(reminders: Sequence[ReminderData], policy: Policy | None = None) -> ReminderData:
    """The reminder whose stage a consolidated message is worded and toned by: the most
    advanced stage (``stage_rank`` in ``policy``; None: the default policy), then the most
    days overdue, then the lowest id.

    Raises ValueError when ``reminders`` is empty.
    """
    if not reminders:
        raise ValueError("a consolidated message needs at least one reminder")
    return max(
        reminders, key=lambda r: (stage_rank(r.stage, policy), r.days_overdue, -r.reminder_id)
    )


def message_order(reminders: Sequence[ReminderData]) -> list[ReminderData]:
    """The invoices of a consolidated message in the order it lists them: oldest due date
    first, then invoice number."""
    return sorted(reminders, key=lambda r: (r.due_on, r.invoice_number, r.reminder_id))


def unsubscribe_token(reminder_id: int, secret: str) -> str:
    """The unsubscribe token of ``reminder_id``: the id and an HMAC-SHA256 of it."""
    digest = hmac.new(secret.encode(), str(reminder_id).encode(), hashlib.sha256).hexdigest()
    return f"{reminder_id}-{digest[:32]}"


def verify_unsubscribe_token(token: str, secret: str) -> int | None:
    """The reminder id in ``token`` when its HMAC is valid, else None."""
    head, _, _ = token.partition("-")
    if not head.isdigit():
        return None
    expected = unsubscribe_token(int(head), secret)
    return int(head) if hmac.compare_digest(expected, token) else None


def paragraphs(text: str) -> list[list[str]]:
    """``text`` as paragraphs (split at blank lines), each a list of its lines; the HTML
    layout's filter ``paragraphs`` (a Python filter: no sandboxed attribute calls per line)."""
    return [p.strip().split("\n") for p in str(text).split("\n\n") if p.strip()]


#: How long a templates directory's state is trusted before its files are looked at again
#: (seconds): an edited, added or removed template is seen within this time.
RECHECK_S = 1.0


def _new_environment(templates_dir: str) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # Freshness is _TemplatesState's (one look at the directory per RECHECK_S), not a
        # stat of the template file on every render.
        auto_reload=False,
    )
    env.filters["paragraphs"] = paragraphs
    return env


@dataclass
class _TemplatesState:
    """What one templates directory holds as last looked at: the files per folder, the Jinja
    environment that compiled them, and the signature (every file's path, mtime and size)
    they were read under."""

    env: ImmutableSandboxedEnvironment
    signature: tuple[tuple[str, int, int], ...] = ()
    files: dict[str, frozenset[str]] = field(default_factory=dict)
    checked_at: float = float("-inf")
    checking: bool = False  # a thread is looking at the directory now


_states: dict[str, _TemplatesState] = {}
_states_lock = threading.Lock()
#: Directories whose state (and compiled templates) a process keeps; the oldest goes first.
_MAX_DIRECTORIES = 8


def _signature(directory: str) -> tuple[tuple[str, int, int], ...]:
    """(relative path, mtime in ns, size) of every file under ``directory``, sorted; () when
    it does not exist."""
    out: list[tuple[str, int, int]] = []
    for root, _dirs, names in os.walk(directory, followlinks=True):
        for name in names:
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            out.append((os.path.relpath(path, directory), st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))


def _state(directory: str) -> _TemplatesState:
    """The templates directory's state, looked at again when older than RECHECK_S.

    Why not a stat per lookup: composing one e-mail looked for 8 to 10 files (the locale's
    candidates, variants, subject, layout, shared phrases), and Jinja checked each template's
    mtime on every render. On a sandboxed kernel (gVisor) that was half of composition's CPU.
    When anything changed, the compiled templates are dropped and compiled again on use.

    Why the look is taken outside the lock, by one thread, while the others go on with the
    state as it was: the walk makes a system call per file, and each gives the GIL away; with
    the composing threads busy, getting it back can take the interpreter's switch interval
    (5 ms) each time, so a walk under the lock held every composing thread for a long time (a
    profile of a 5k-message run: 104 of 254 samples of e-mail composition waited on it). Only
    the first look at a directory holds the lock, since before it no file is known."""
    now = time.monotonic()
    state = _states.get(directory)
    if state is not None and now - state.checked_at < RECHECK_S:
        return state  # the common case: no lock
    with _states_lock:
        state = _states.get(directory)
        if state is None:
            while len(_states) >= _MAX_DIRECTORIES:
                del _states[next(iter(_states))]
            state = _states[directory] = _TemplatesState(_new_environment(directory))
        if now - state.checked_at < RECHECK_S:
            return state
        if state.checked_at == float("-inf"):  # never looked at: nothing to go on with
            _apply(state, _signature(directory), now)
            return state
        if state.checking:  # another thread is looking; this state is at most that old
            return state
        state.checking = True
    signature = None
    try:
        signature = _signature(directory)
    finally:
        with _states_lock:
            state.checking = False
            if signature is not None:
                _apply(state, signature, now)
    return state


def _apply(state: _TemplatesState, signature: tuple[tuple[str, int, int], ...], now: float) -> None:
    """``state`` as of ``signature`` looked at ``now`` (under ``_states_lock``): when the
    signature changed, the files per folder anew and the compiled templates dropped."""
    if signature != state.signature:
        files: dict[str, set[str]] = {}
        for rel, _mtime, _size in signature:
            folder, _, name = rel.replace(os.sep, "/").rpartition("/")
            files.setdefault(folder, set()).add(name)
        state.files = {k: frozenset(v) for k, v in files.items()}
        state.signature = signature
        if state.env.cache is not None:
            state.env.cache.clear()
    state.checked_at = now


def _environment(templates_dir: str) -> ImmutableSandboxedEnvironment:
    return _state(templates_dir).env


def templates_dir(settings: ChannelSettings | None = None) -> Path:
    """The templates directory in force (setting DUNNING_TEMPLATES_DIR, else templates/)."""
    configured = (settings or get_settings().channels).templates_dir
    return Path(configured) if configured else DEFAULT_TEMPLATES_DIR


def _template_line(exc: BaseException, directory: Path | None) -> tuple[str, int] | None:
    """(template file relative to ``directory``, line) where a render error was raised.

    Jinja rewrites the traceback so a template's frames carry its file name and line."""
    root = str(directory or DEFAULT_TEMPLATES_DIR)
    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(root) and frame.lineno:
            where = (str(Path(frame.filename).relative_to(root)), frame.lineno)
    return where


def _template_error(name: str, directory: Path | None, exc: jinja2.TemplateError) -> TemplateError:
    """Jinja's error while using template ``name`` as a TemplateError naming the template,
    the line, and the missing field when one is missing."""
    if isinstance(exc, jinja2.UndefinedError):
        where = _template_line(exc, directory)
        place = f"template {where[0]} line {where[1]}" if where else f"template {name}"
        if where and where[0] != name:
            place += f" (rendering {name})"
        return TemplateError(
            f"{place}: field {exc.message}; pass that field in the render context or "
            "fix its name in the template"
        )
    if isinstance(exc, jinja2.TemplateNotFound):
        return TemplateError(f"template {name}: {exc.name} not found in {directory}")
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(
            f"template {exc.name or name} line {exc.lineno}: syntax error: {exc.message}"
        )
    return TemplateError(f"template {name}: {exc}")


def render_template(name: str, context: dict[str, Any], directory: Path | None = None) -> str:
    """The template ``name`` rendered with ``context``; any failure is a TemplateError naming
    the template (and the missing field, when one is missing). The shared phrases ``s`` are
    added when ``context`` has a ``lang`` but no ``s``."""
    directory = directory or DEFAULT_TEMPLATES_DIR
    if "s" not in context and "lang" in context:
        context = with_shared_phrases(context, directory)
    env = _environment(str(directory))
    try:
        return env.get_template(name).render(context).strip()
    except jinja2.TemplateError as exc:
        raise _template_error(name, directory, exc) from None


def with_shared_phrases(
    context: dict[str, Any], directory: Path, folder: str = "_shared", key: str = "s"
) -> dict[str, Any]:
    """``context`` plus ``s``: the language's shared phrases (``_shared/<lang>.txt``, its
    macros bound to this context), when that file exists. ``folder`` and ``key`` name another
    set of phrases (the spoken phrases of a call: ``_voice``, bound as ``v``).

    Why once per message: every template of a message uses the same phrases, and importing
    them ``with context`` in each template evaluated the module anew for every render (four
    per e-mail). A template that still imports them itself keeps working.
    """
    name = f"{folder}/{context['lang']}.txt"
    if not template_exists(directory, name):
        return context
    env = _environment(str(directory))
    try:
        return {**context, key: env.get_template(name).make_module(context)}
    except jinja2.TemplateError as exc:
        raise _template_error(name, directory, exc) from None


class PlainPhrases:
    """The shared phrases for an autoescaped (HTML) template, each macro returning plain text.

    Why: Jinja marks a macro's result safe when the macro is called from an autoescaped
    template, even when the macro lives in a plain-text file and never escaped its input. So
    ``{{ s.greeting() }}`` in HTML would put a customer's name into the page unescaped. Called
    through this wrapper (no evaluation context passed), a phrase is a plain string and the
    HTML template escapes it like any other value.
    """

    def __init__(self, module: Any) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        macro = getattr(self._module, name)

        def phrase(*args: Any, **kwargs: Any) -> str:
            return str(macro(*args, **kwargs))

        return phrase


def template_exists(directory: Path, name: str) -> bool:
    """Whether ``directory``/``name`` (``<folder>/<file>``) is a template file (as the
    directory was at most RECHECK_S ago)."""
    folder, _, filename = name.rpartition("/")
    return filename in _state(str(directory)).files.get(folder, frozenset())


def resolve(
    stage: str, channel: str, locale: str, directory: Path, *, consolidated: bool = False
) -> ResolvedLocale:
    """The one locale of a message to ``locale`` on ``channel`` at ``stage``: the best template
    language that exists and the Babel locale its dates and amounts are formatted in (the
    customer's own locale when the words are in their language, else the fallback's).
    ``consolidated``: the message lists several invoices (templates in ``_customer/``).

    Raises TemplateError when not even the fallback language's template exists.
    """
    base = CONSOLIDATED if consolidated else base_stage(stage)
    resolved = resolve_locale(
        locale, lambda lang: template_exists(directory, f"{base}/{channel}.{lang}.txt")
    )
    if resolved is None:
        raise TemplateError(
            f"no {channel} template for stage {stage!r}: expected {directory / base}/"
            f"{channel}.{FALLBACK_LANGUAGE}.txt"
        )
    return resolved


def find_language(stage: str, channel: str, locale: str, directory: Path) -> str:
    """The best template language for ``locale`` that exists for ``stage``/``channel``."""
    return resolve(stage, channel, locale, directory).lang


def variant_stem(directory: Path, stem: str, variant: str | None) -> str:
    """``<stem>.<variant>`` when the variant's template ``<stem>.<variant>.txt`` exists, else
    ``stem`` (the control template: a variant missing for a locale falls back to it; the
    run reports that before sending, see dunning.experiments.templates)."""
    if variant and template_exists(directory, f"{stem}.{variant}.txt"):
        return f"{stem}.{variant}"
    return stem


def promise_terms(data: ReminderData, fmt: str) -> dict[str, str | None] | None:
    """The latest agreement for templates ("as agreed on 3 December …"): ``on`` (the date
    promised), ``amount`` (None: the whole balance) and ``agreed_on`` (None when unknown, e.g.
    a promise imported from a file), formatted in ``fmt``; None without a promise."""
    if data.promise_to_pay_on is None:
        return None
    return {
        "on": format_day(data.promise_to_pay_on, fmt),
        "amount": None
        if data.promise_amount is None
        else format_money(data.promise_amount, data.currency, fmt),
        "agreed_on": format_day(data.promise_made_on, fmt) if data.promise_made_on else None,
    }


def build_context(
    data: ReminderData,
    where: ResolvedLocale | str,
    settings: ChannelSettings,
    invoices: Sequence[ReminderData] | None = None,
) -> dict[str, Any]:
    """The render context (merge fields) for ``data`` in the resolved locale ``where``.

    Words, dates and amounts all follow ``where`` (a bare template language such as "de" is
    read as that language formatted in the customer's locale). ``invoices`` are the reminders
    this message covers (default: ``data`` alone); they become the summary rows
    ``invoices`` and the per-currency ``totals`` of the layout.
    """
    if isinstance(where, str):
        where = ResolvedLocale(where, babel_locale(data.locale))
    core = get_settings()
    fmt = where.formats
    token = unsubscribe_token(data.reminder_id, settings.unsubscribe_secret.get_secret_value())
    balance_due = format_money(data.balance_due, data.currency, fmt)
    amount = format_money(data.amount, data.currency, fmt)
    due_date = format_day(data.due_on, fmt)
    link = safe_link(data.payment_link)
    if invoices:
        items, totals = invoice_items(invoices, fmt), currency_totals(invoices, fmt)
        links = {r.payment_link for r in invoices}
        if len(invoices) > 1 and len(links) > 1:
            # One pay button or SMS link for several invoices would pay only one of them:
            # each row of the summary carries its own link instead.
            link = None
    else:  # one invoice: its summary row reuses the values formatted above
        items, totals = [summary_row(data, due_date, balance_due, amount)], [balance_due]
    return {
        "lang": where.lang,
        "format_locale": fmt,
        "stage": data.stage,
        "repeat": repeat_number(data.stage) or 1,
        "tone": data.tone or "neutral",
        "segment": data.segment,
        "customer_name": data.customer_name or "",
        "invoice_number": data.invoice_number,
        "currency": data.currency,
        "balance_due": balance_due,
        "amount": amount,
        "partly_paid": data.balance_due < data.amount,
        "due_date": due_date,
        # Numeric: month names such as août or março would push an SMS into UCS-2.
        "due_date_short": format_day(data.due_on, fmt, "short"),
        "promise": promise_terms(data, fmt),
        "days_overdue": max(data.days_overdue, 0),
        "days_until_due": max(-data.days_overdue, 0),
        "payment_link": link,
        "invoices": items,
        "totals": totals,
        "invoice_count": len(items),
        "invoice_numbers": [item["invoice_number"] for item in items],
        # The stage a consolidated message is worded by (its lead's, the most advanced).
        "lead_stage": base_stage(data.stage),
        "logo_url": settings.email_logo_url,
        **brand_colors(settings.email_brand_color),
        "company_name": core.company_name,
        "support_contact": core.support_contact,
        "postal_address": settings.postal_address,
        "unsubscribe_url": f"{settings.unsubscribe_base_url.rstrip('/')}/{token}",
        "unsubscribe_token": token,
    }


def unsubscribe_headers(context: dict[str, Any], settings: ChannelSettings) -> dict[str, str]:
    """List-Unsubscribe (mailto + one-click https URL) and List-Unsubscribe-Post headers."""
    mailto = settings.unsubscribe_mailto or settings.email_from
    return {
        "List-Unsubscribe": (
            f"<mailto:{mailto}?subject=unsubscribe%20{context['unsubscribe_token']}>, "
            f"<{context['unsubscribe_url']}>"
        ),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def compose(
    data: ReminderData,
    settings: ChannelSettings | None = None,
    invoices: Sequence[ReminderData] | None = None,
) -> OutboundMessage:
    """The rendered message for one reminder on its channel (email or sms).

    ``invoices``: every reminder the message covers when it lists several invoices (one
    message per customer, see ``compose_group``); with more than one, the words come from the
    consolidated templates (``_customer/``) worded by ``data``'s stage, and the email's
    summary is a table with one total per currency. Default: ``data`` alone.
    Raises TemplateError (a missing template, field or address).
    """
    settings = settings or get_settings().channels
    if data.channel == "email":
        return _compose_email(data, settings, invoices)
    if data.channel == "sms":
        return _compose_sms(data, settings, invoices)
    if data.channel == "voice":
        from dunning.render.voice import compose_voice

        return compose_voice(data, settings)
    raise TemplateError(
        f"reminder {data.reminder_id}: unknown channel {data.channel!r} "
        "(expected email, sms or voice)"
    )


def compose_group(
    reminders: Sequence[ReminderData],
    settings: ChannelSettings | None = None,
    policy: Policy | None = None,
) -> OutboundMessage:
    """The one message of a customer's reminders on one channel (policy consolidate =
    "customer"): worded and toned by the most advanced stage among them (``lead_reminder``),
    listing every invoice (number, due date, days overdue, balance; ``message_order``) with one
    total per currency. Its ``reminder_id`` is the lead's. One reminder: its own message.
    ``policy``: the run's policy, whose ladder ranks the stages (None: the default policy).

    Raises ValueError when ``reminders`` is empty, TemplateError as ``compose``.
    """
    lead = lead_reminder(reminders, policy)
    if len(reminders) == 1:
        return compose(lead, settings)
    return compose(lead, settings, invoices=message_order(reminders))


def _prepare(
    data: ReminderData, settings: ChannelSettings, invoices: Sequence[ReminderData] | None
) -> tuple[Path, str, str, dict[str, Any]]:
    """What composing ``data`` on its channel starts from: the templates directory, the
    template language, the base stage and the render context with the shared phrases, all in
    the message's one resolved locale."""
    directory = templates_dir(settings)
    consolidated = bool(invoices) and len(invoices or ()) > 1
    where = resolve(data.stage, data.channel, data.locale, directory, consolidated=consolidated)
    ctx = with_shared_phrases(build_context(data, where, settings, invoices), directory)
    return directory, where.lang, CONSOLIDATED if consolidated else base_stage(data.stage), ctx


def _compose_email(
    data: ReminderData, settings: ChannelSettings, invoices: Sequence[ReminderData] | None
) -> OutboundMessage:
    if not data.email:
        raise TemplateError(
            f"reminder {data.reminder_id}: customer {data.customer_id} has no "
            "email address; import one or plan SMS instead"
        )
    directory, lang, base, ctx = _prepare(data, settings, invoices)
    stem = variant_stem(directory, f"{base}/email.{lang}", data.variant)
    subject_name = f"{stem}.subject.txt"
    if not template_exists(directory, subject_name):  # a variant may keep the control subject
        subject_name = f"{base}/email.{lang}.subject.txt"
    subject = render_template(subject_name, ctx, directory)
    body = render_template(f"{stem}.txt", ctx, directory)
    text = render_template("_layout/email.txt", {**ctx, "body": body}, directory)
    html_name = f"{base}/email.{lang}.html"
    if not template_exists(directory, html_name):
        html_name = "_layout/email.html"
    paragraphs = [p for p in body.split("\n\n") if p.strip()]
    html_ctx = {**ctx, "subject": subject, "body": body, "paragraphs": paragraphs}
    if "s" in ctx:
        html_ctx["s"] = PlainPhrases(ctx["s"])
    html = render_template(html_name, html_ctx, directory)
    return OutboundMessage(
        reminder_id=data.reminder_id,
        channel="email",
        to=data.email,
        text=text,
        subject=" ".join(subject.split()),  # a header must be one line
        html=html,
        template_key=stem,
        locale=lang,
        headers=unsubscribe_headers(ctx, settings),
        custom_args={"reminder_id": str(data.reminder_id)},
    )


def _compose_sms(
    data: ReminderData, settings: ChannelSettings, invoices: Sequence[ReminderData] | None
) -> OutboundMessage:
    if not data.phone:
        raise TemplateError(
            f"reminder {data.reminder_id}: customer {data.customer_id} has no "
            "phone number; import one or plan email instead"
        )
    directory, lang, base, ctx = _prepare(data, settings, invoices)
    stem = variant_stem(directory, f"{base}/sms.{lang}", data.variant)
    text = render_template(f"{stem}.txt", ctx, directory)
    if settings.sms_opt_out_hint:
        text = f"{text} {render_template('_layout/sms_stop.txt', ctx, directory)}"
    text = plain_text(text)
    count = count_segments(text)
    warnings = []
    if count.segments > settings.sms_max_segments:
        warnings.append(
            f"sms is {count.segments} {count.encoding} segments ({count.units} units), more "
            f"than DUNNING_SMS_MAX_SEGMENTS={settings.sms_max_segments}"
        )
    return OutboundMessage(
        reminder_id=data.reminder_id,
        channel="sms",
        to=data.phone,
        text=text,
        template_key=stem,
        locale=lang,
        custom_args={"reminder_id": str(data.reminder_id)},
        warnings=warnings,
    )
