"""SendGrid bulk Mail Send: same-template reminders share a request; a rejected request is
split until the bad address stands alone. Against the fake SendGrid on 127.0.0.1."""

from __future__ import annotations

from pydantic import SecretStr

from dunning.channels.sendgrid import SendGridChannel, send_units
from dunning.config.channels import ChannelSettings
from dunning.core.messages import OutboundMessage
from dunning.devtools.fakes import run_fakes


def message(rid: int, to: str | None = None, template: str = "due/email.en") -> OutboundMessage:
    return OutboundMessage(
        reminder_id=rid,
        channel="email",
        to=to or f"c{rid}@example.com",
        text=f"Dear C{rid}, invoice INV-{rid} is due.",
        subject=f"Invoice INV-{rid}",
        html=f"<p>Dear C{rid}</p>",
        template_key=template,
        locale="en",
        headers={"List-Unsubscribe": f"<https://u.example/{rid}>"},
        custom_args={"reminder_id": str(rid)},
    )


def test_same_template_messages_share_one_request_with_their_own_content() -> None:
    with run_fakes(callbacks=False) as fakes:
        channel = SendGridChannel(
            ChannelSettings(), SecretStr(fakes.sendgrid_api_key), fakes.base_url
        )
        results = channel.send_batch([message(i) for i in range(1, 6)])
        received = fakes.received("sendgrid")
    assert [r.ok for r in results] == [True] * 5
    assert len({r.provider_message_id for r in results}) == 1  # one request
    assert {m.reminder_id: m.body for m in received} == {
        str(i): f"Invoice INV-{i}" for i in range(1, 6)
    }
    assert {m.reminder_id: m.to for m in received}["3"] == "c3@example.com"


def test_a_rejected_address_fails_alone_and_the_others_go_out() -> None:
    batch = [message(i) for i in range(1, 7)]
    batch[3] = message(4, to="not-an-address")
    with run_fakes(callbacks=False) as fakes:
        channel = SendGridChannel(
            ChannelSettings(), SecretStr(fakes.sendgrid_api_key), fakes.base_url
        )
        results = channel.send_batch(batch)
        received = fakes.received("sendgrid")
    assert [r.reminder_id for r in results] == [1, 2, 3, 4, 5, 6]
    assert [r.ok for r in results] == [True, True, True, False, True, True]
    assert not results[3].transient and results[3].error_code is not None
    assert sorted(int(m.reminder_id or 0) for m in received) == [1, 2, 3, 5, 6]


def test_units_group_by_template_up_to_the_limit_and_leave_unknown_templates_alone() -> None:
    batch = [message(i) for i in range(1, 6)] + [
        message(6, template="overdue_1/email.en"),
        message(7, template=""),
    ]
    units = send_units(batch, 2)
    assert sorted(len(u) for u in units) == [1, 1, 1, 2, 2]
    assert [m.reminder_id for m in units[0]] == [7]
    assert send_units(batch, 1) == [[m] for m in batch]
