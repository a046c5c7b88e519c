"""A customer's time zone and locale from their country, where a provider has none.

Stripe and Xero know a customer's address country (and Stripe their preferred languages), not
their time zone. The send window needs one: the country's main zone is taken (a source
setting, ``default_timezone``, overrides it for every customer of that source).
"""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.core import get_global

# Countries spanning several zones: the zone where most of the population lives (CLDR lists
# zones alphabetically, so its first one, America/Adak for the US, would be wrong).
_MAIN_ZONE = {
    "US": "America/New_York",
    "CA": "America/Toronto",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "RU": "Europe/Moscow",
    "MX": "America/Mexico_City",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "DE": "Europe/Berlin",
    "NZ": "Pacific/Auckland",
    "CN": "Asia/Shanghai",
    "ID": "Asia/Jakarta",
    "AR": "America/Argentina/Buenos_Aires",
    "KZ": "Asia/Almaty",
    "CL": "America/Santiago",
    "EC": "America/Guayaquil",
    "MY": "Asia/Kuala_Lumpur",
    "UA": "Europe/Kyiv",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "NL": "Europe/Amsterdam",
    "DK": "Europe/Copenhagen",
    "CD": "Africa/Kinshasa",
    "MN": "Asia/Ulaanbaatar",
    "PG": "Pacific/Port_Moresby",
    "KI": "Pacific/Tarawa",
    "FM": "Pacific/Pohnpei",
    "PF": "Pacific/Tahiti",
    "UZ": "Asia/Tashkent",
    "CY": "Asia/Nicosia",
}


@lru_cache(maxsize=512)
def zone_for(country: str | None) -> str | None:
    """The IANA zone of ``country`` (ISO alpha-2), or None when unknown."""
    if not country:
        return None
    code = country.upper()
    if code in _MAIN_ZONE:
        return _MAIN_ZONE[code]
    zones = get_global("territory_zones").get(code) or []
    return str(zones[0]) if zones else None


@lru_cache(maxsize=1024)
def locale_for(preferred: tuple[str, ...], country: str | None) -> str | None:
    """The locale from a provider's preferred languages (``de``, ``en-GB``) and the country:
    the first language that parses, with the country as region when it has none; else the
    country's main language (``und_DE`` -> ``de_DE``); None when neither gives one."""
    region = country.upper() if country else None
    for tag in preferred:
        lang = tag.replace("-", "_")
        candidates = [lang] if "_" in lang else ([f"{lang}_{region}"] if region else []) + [lang]
        for candidate in candidates:
            try:
                return str(Locale.parse(candidate))
            except (UnknownLocaleError, ValueError):
                continue
    if region:
        try:
            return str(Locale.parse(f"und_{region}"))
        except (UnknownLocaleError, ValueError):
            return None
    return None
