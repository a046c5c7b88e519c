"""Before sending: every variant a plan line asks for exists for the message's locale, else
the line falls back to the control template and the run reports it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dunning.errors import TemplateError
from dunning.policy.model import base_stage
from dunning.render import resolve, template_exists, templates_dir


def check_variants(
    lines: pd.DataFrame, directory: Path | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """(``lines`` with ``variant`` cleared where its template is missing, the warnings).

    A send or defer line with a variant is checked against ``<stage>/<channel>.<lang>.
    <variant>.txt`` in the templates directory in force (``lang``: the locale the message
    will be written in). Voice reminders have no variants: they use the control script. One
    warning per (experiment, variant, template) missing, with the number of lines.
    """
    if "variant" not in lines.columns or lines["variant"].isna().all():
        return lines, []
    folder = directory or templates_dir()
    out = lines.copy()
    wanted = out["variant"].notna() & out["action"].astype(str).isin(["send", "defer"])
    warnings: list[str] = []
    keys = ["experiment", "variant", "stage", "channel", "locale"]
    for (exp, variant, stage, channel, locale), group in out.loc[wanted].groupby(
        keys, dropna=False, observed=True
    ):
        base = base_stage(str(stage))
        try:
            lang = resolve(str(stage), str(channel), str(locale), folder).lang
        except TemplateError:
            continue  # the control template is missing too: check_templates fails the run
        name = f"{base}/{channel}.{lang}.{variant}.txt"
        if channel != "voice" and template_exists(folder, name):
            continue
        out.loc[group.index, "variant"] = None
        warnings.append(
            f"experiment {exp}: template variant {name} does not exist; {len(group)} "
            f"reminder(s) use the control template {base}/{channel}.{lang}.txt"
        )
    return out, sorted(set(warnings))
