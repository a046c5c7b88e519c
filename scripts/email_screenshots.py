"""Screenshot the HTML reminder email with headless Chromium, one per script family.

``python scripts/email_screenshots.py [--out docs/screenshots]``

Composes the overdue_1 email with ``dunning.render.compose`` (the code that sends them) for an
English customer (one invoice, partly paid), an English customer with several invoices in two
currencies (the summary table), and a Japanese customer, writes each HTML part to a temporary
file and points Chromium (Debian packages ``chromium`` and ``fonts-noto-cjk``) at it. Nothing
is fetched from the network: the pages have no remote images.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dunning.config.channels import ChannelSettings  # noqa: E402
from dunning.core.messages import ReminderData  # noqa: E402
from dunning.render import compose  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]
BASE = ReminderData(
    reminder_id=41,
    invoice_id=7,
    invoice_number="INV-2026-0007",
    customer_id="C-1",
    stage="overdue_1",
    channel="email",
    segment="reliable",
    tone="neutral",
    customer_name="Jane Doe",
    email="jane@example.com",
    phone=None,
    locale="en_GB",
    timezone="Europe/London",
    country="GB",
    currency="GBP",
    amount=Decimal("1234.50"),
    balance_due=Decimal("734.50"),
    due_on=dt.date(2026, 11, 20),
    days_overdue=4,
    payment_link="https://pay.example.com/inv/INV-2026-0007",
)


#: Window height per screenshot: the email's length, so the picture has no empty tail.
HEIGHTS = {"email-en": 720, "email-en-several": 770, "email-ja": 850}


def _emails() -> dict[str, tuple[ReminderData, list[ReminderData] | None]]:
    several = [
        BASE,
        dataclasses.replace(
            BASE,
            reminder_id=42,
            invoice_id=8,
            invoice_number="INV-2026-0011",
            amount=Decimal("89.90"),
            balance_due=Decimal("89.90"),
            due_on=dt.date(2026, 11, 10),
            days_overdue=14,
            payment_link="https://pay.example.com/inv/INV-2026-0011",
        ),
        dataclasses.replace(
            BASE,
            reminder_id=43,
            invoice_id=9,
            invoice_number="INV-2026-0015",
            currency="EUR",
            amount=Decimal("420.00"),
            balance_due=Decimal("420.00"),
            due_on=dt.date(2026, 11, 22),
            days_overdue=2,
            payment_link=None,
        ),
    ]
    japanese = dataclasses.replace(
        BASE,
        customer_name="佐藤 健二",
        locale="ja_JP",
        timezone="Asia/Tokyo",
        country="JP",
        currency="JPY",
        amount=Decimal("540000"),
        balance_due=Decimal("500000"),
        due_on=dt.date(2026, 11, 27),
        days_overdue=10,
    )
    return {
        "email-en": (BASE, None),
        "email-en-several": (BASE, several),
        "email-ja": (japanese, None),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print(
            "error: chromium is not installed; apt-get install -y chromium fonts-noto-cjk",
            file=sys.stderr,
        )
        return 1
    settings = ChannelSettings(
        email_brand_color="#0b6e4f", postal_address="1 Example Street, London EC1A 1AA"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (data, invoices) in _emails().items():
            message = compose(data, settings, invoices=invoices)
            page = Path(tmp) / f"{name}.html"
            page.write_text(message.html or "", encoding="utf-8")
            shot = args.out / f"{name}.png"
            subprocess.run(
                [
                    chromium,
                    *CHROMIUM_FLAGS,
                    f"--window-size=720,{HEIGHTS[name]}",
                    f"--screenshot={shot}",
                    page.as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            print(shot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
