"""Customer regions: ISO 3166-2 subdivisions (``AU-NSW``), validated against the subdivisions
the ``holidays`` package knows, and defaulted from the time zone where the zone names one.

A region is stored as the full ISO 3166-2 code, country prefix included (``AU-NSW``,
``CA-ON``, ``US-HI``, ``GB-SCT``, ``DE-BY``); the import also accepts the bare subdivision
(``NSW``) and adds the customer's country. Regional public holidays come from
``holidays.country_holidays(country, subdiv=...)``.
"""

from __future__ import annotations

import re
from functools import lru_cache

import holidays

# Time zones whose area lies in one subdivision, or which are named after a city whose
# subdivision is the reasonable default. Shared zones are marked: a customer elsewhere in
# the zone (Canberra in Australia/Sydney, Québec in America/Toronto, Prince Edward Island in
# America/Halifax) needs the region in the import. Zones that span a whole country
# (Europe/Berlin, Europe/London, America/New_York) have no default.
REGION_BY_ZONE: dict[str, str] = {
    # Australia
    "Australia/Sydney": "AU-NSW",  # shared with the ACT
    "Australia/Broken_Hill": "AU-NSW",
    "Australia/Lord_Howe": "AU-NSW",
    "Australia/Canberra": "AU-ACT",
    "Australia/ACT": "AU-ACT",
    "Australia/Melbourne": "AU-VIC",
    "Australia/Brisbane": "AU-QLD",
    "Australia/Lindeman": "AU-QLD",
    "Australia/Adelaide": "AU-SA",
    "Australia/Perth": "AU-WA",
    "Australia/Eucla": "AU-WA",
    "Australia/Hobart": "AU-TAS",
    "Australia/Darwin": "AU-NT",
    # Canada
    "America/Toronto": "CA-ON",  # shared with most of Québec since tzdb 2022b
    "America/Montreal": "CA-QC",
    "America/Vancouver": "CA-BC",
    "America/Edmonton": "CA-AB",  # shared with parts of BC, NT and SK
    "America/Winnipeg": "CA-MB",
    "America/Regina": "CA-SK",
    "America/Swift_Current": "CA-SK",
    "America/Halifax": "CA-NS",  # shared with Prince Edward Island
    "America/Glace_Bay": "CA-NS",
    "America/Moncton": "CA-NB",
    "America/St_Johns": "CA-NL",
    "America/Goose_Bay": "CA-NL",
    "America/Whitehorse": "CA-YT",
    "America/Dawson": "CA-YT",
    "America/Yellowknife": "CA-NT",
    "America/Iqaluit": "CA-NU",
    # United States: zones inside one state
    "Pacific/Honolulu": "US-HI",
    "America/Anchorage": "US-AK",
    "America/Juneau": "US-AK",
    "America/Sitka": "US-AK",
    "America/Nome": "US-AK",
    "America/Phoenix": "US-AZ",
    "America/Boise": "US-ID",
    "America/Detroit": "US-MI",
    "America/Indiana/Indianapolis": "US-IN",
    "America/Kentucky/Louisville": "US-KY",
    # United Kingdom
    "Europe/Belfast": "GB-NIR",
}

_CODE = re.compile(r"[A-Z0-9]{1,3}")


@lru_cache(maxsize=256)
def subdivisions(country: str) -> frozenset[str]:
    """The ISO 3166-2 subdivision codes (without country prefix) ``holidays`` has for
    ``country``; empty when it has none or does not know the country.

    Entries of other kinds the package lists (``NSW Western``, ``Zone A``, city names) are not
    ISO 3166-2 codes and are left out.
    """
    try:
        known = holidays.country_holidays(country).subdivisions
    except NotImplementedError:
        return frozenset()
    return frozenset(s for s in known if _CODE.fullmatch(s))


def parse_region(value: str, country: str) -> str:
    """``value`` (``AU-NSW`` or ``NSW``, any case) as the ISO 3166-2 code ``AU-NSW`` of a
    subdivision of ``country``.

    Raises ValueError naming the allowed codes when ``holidays`` knows no such subdivision of
    ``country``, or when the prefix names another country.
    """
    text = value.strip().upper().replace("_", "-")
    prefix, dash, code = text.rpartition("-")
    if dash and prefix != country:
        raise ValueError(
            f"{value!r} is a region of {prefix or '?'}, not of the customer's country {country}"
        )
    known = subdivisions(country)
    if not known:
        raise ValueError(
            f"{value!r}: no regional holidays are known for {country}; leave region empty"
        )
    if code not in known:
        raise ValueError(
            f"{value!r} is not a subdivision of {country}; use an ISO 3166-2 code such as "
            f"{country}-{sorted(known)[0]} (known: {', '.join(sorted(known))})"
        )
    return f"{country}-{code}"


def default_region(timezone: str, country: str) -> str | None:
    """The region of a customer in ``timezone`` and ``country`` when the zone names one
    (``Australia/Sydney`` in AU -> ``AU-NSW``), else None."""
    region = REGION_BY_ZONE.get(timezone)
    if region is None or not region.startswith(f"{country}-"):
        return None
    return region


def holiday_subdivision(region: str | None, country: str) -> str | None:
    """The ``subdiv`` argument of ``holidays`` for ``region`` (``AU-NSW`` -> ``NSW``), or None
    when the region is empty or not of ``country``."""
    if not region or not region.startswith(f"{country}-"):
        return None
    code = region[len(country) + 1 :]
    return code if code in subdivisions(country) else None
