"""Settings as the app's widgets need them, and widget text checked in the app's own words.

Everything is derived from `nfx.settings.FIELDS`, so a new setting appears in every form
without touching a page. Errors name the field by its label and say what to type; no
command-line syntax ("name=value1,value2") on a page that has no command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from nfx.errors import InputError
from nfx.labels import field_label
from nfx.settings import FIELDS, FieldSpec, Settings, split_values

__all__ = ["FieldSpec", "Settings", "field_label", "settings_groups", "sweepable_fields",
           "default_settings", "field_error", "check_form", "FormCheck", "settings_frame"]


def default_settings() -> Settings:
    return Settings()


def settings_groups() -> dict[str, list[FieldSpec]]:
    """FIELDS by widget group, in declaration order."""
    groups: dict[str, list[FieldSpec]] = {}
    for spec in FIELDS.values():
        groups.setdefault(spec.group, []).append(spec)
    return groups


def sweepable_fields() -> list[str]:
    return [name for name, spec in FIELDS.items() if spec.sweepable]


def _expected(spec: FieldSpec) -> str:
    return {"int": "a whole number", "float": "a number",
            "choice": "one of " + ", ".join(spec.choices),
            "list": "a list separated by commas"}[spec.kind]


def _range_error(spec: FieldSpec, value: Any) -> str | None:
    if spec.kind not in ("int", "float") or spec.minimum is None or spec.maximum is None:
        return None
    if not spec.minimum <= value <= spec.maximum:
        return (f"{spec.format(value)} is outside the allowed range, "
                f"{spec.format(spec.minimum)} to {spec.format(spec.maximum)}.")
    return None


def _parse(spec: FieldSpec, text: str) -> Any:
    try:
        return spec.parse(text)
    except InputError:
        raise InputError(f"“{text.strip()}” is not {_expected(spec)}.") from None


def parse_sweep_text(name: str, text: str) -> list[Any]:
    """'1e3, 1e4' (or '1e3 1e4') -> [1000.0, 10000.0]; InputError in the app's words."""
    spec = FIELDS[name]
    items = split_values(text)
    if not items:
        raise InputError("Enter one or more values, separated by commas or spaces.")
    values = [_parse(spec, t) for t in items]
    for value in values:
        if (error := _range_error(spec, value)) is not None:
            raise InputError(error)
    return values


def parse_field_text(name: str, text: str) -> Any:
    """A list setting typed as text ('relu1_1, relu2_1'); InputError in the app's words."""
    return _parse(FIELDS[name], text)


def field_error(name: str, text: str, *, sweep: bool) -> str | None:
    """What is wrong with one text box, for the line right under it; None when fine."""
    try:
        parse_sweep_text(name, text) if sweep else parse_field_text(name, text)
    except InputError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class FormCheck:
    """A settings form read: the settings and sweep, or what is wrong and where."""

    base: Settings | None
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message
    general: str | None = None  # a rule across fields (e.g. one weight per style layer)

    @property
    def ok(self) -> bool:
        return self.base is not None and not self.errors and self.general is None

    def summary(self) -> str:
        if self.general:
            return self.general
        names = ", ".join(field_label(n) for n in self.errors)
        return f"Fix {names} above to see and queue the jobs."


def check_form(values: dict[str, Any], sweep_texts: dict[str, str] | None = None,
               base: Settings | None = None) -> FormCheck:
    """Widget values (list fields as text) and sweep texts -> FormCheck."""
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, str):
            try:
                parsed[name] = parse_field_text(name, value)
            except InputError as exc:
                errors[name] = str(exc)
        else:
            parsed[name] = value
    sweep: dict[str, list[Any]] = {}
    for name, text in (sweep_texts or {}).items():
        try:
            sweep[name] = parse_sweep_text(name, text)
        except InputError as exc:
            errors[name] = str(exc)
    if errors:
        return FormCheck(None, sweep, errors)
    try:
        settings = (base or Settings()).with_changes(**parsed)
    except InputError as exc:
        return FormCheck(None, sweep, general=str(exc).removeprefix("invalid settings: "))
    return FormCheck(settings, sweep)


def changed_values(values: dict[str, Any], original: Settings) -> dict[str, Any]:
    """The widget values that differ from `original` (for a re-run); InputError if bad."""
    checked = check_form(values, base=original)
    if not checked.ok:
        raise InputError(checked.summary() if checked.general else
                         "; ".join(f"{field_label(n)}: {m}" for n, m in checked.errors.items()))
    assert checked.base is not None, "an ok form has its settings"
    return {name: mine for name, (mine, _) in checked.base.differences(original).items()}


def settings_frame(settings: Settings) -> pd.DataFrame:
    """Every setting with its value and group, for a read-only table."""
    rows = [{"setting": spec.label, "value": spec.text_of(settings), "group": spec.group}
            for spec in FIELDS.values()]
    return pd.DataFrame(rows).set_index("setting")
