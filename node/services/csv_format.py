"""The CSV column sets of licensees and subjects: how a cell is read into a field, and
how a field is written back into a cell. ``csv_import`` and ``export`` share them, so an
exported file imports again unchanged. The user's guide is ``docs/csv.md``.

Licensees: ``licence_number``, ``licence_type``, ``legal_name`` (required), ``trade_names``,
``address``, ``region``, ``issued_on``, ``expires_on``, ``status``, ``handling``,
``directors``, ``beneficial_owners``.

Subjects: ``kind``, ``names``, ``reason_category`` (required), ``aliases``,
``date_of_birth``, ``nationality``, ``documents``, ``linked_licence_numbers``,
``risk_level``, ``narrative``, ``source_agency``, ``handling``.

Cells: empty means absent (the field's default applies). Multi-valued cells separate
values with ``|``; a document is ``type:number`` or ``type:number:country``; directors and
beneficial owners are names only. Dates are ``YYYY-MM-DD`` or ``DD/MM/YYYY``. Enumerated
values are accepted in any case and, where a French-locale user would type them, in
French (``comptoir``, ``actif``, ``révoqué``, ...). A cell that would start a spreadsheet
formula (``=``, ``+``, ``-``, ``@``, or a character that NFKC folds to one of them, such
as the fullwidth U+FF1D, or a tab or line break) is exported with a leading ``'``, which
import removes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from protocol import Handling, LicenceStatus, LicenceType, PartyKind, ReasonCategory, RiskLevel

from ..schemas.records import LicenseeCreate, LicenseeOut, SubjectCreate, SubjectOut
from .licensees import LicenseeRegistry
from .records import RecordRegistry, fold
from .subjects import SubjectRegistry

LIST_SEPARATOR = "|"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FRENCH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_FRENCH_MONTH = re.compile(r"^(\d{1,2})/(\d{4})$")
# What a spreadsheet may take as the start of a formula, after NFKC (U+FF1D is ``=``).
_FORMULA_LEADS = frozenset("=+-@")
_CONTROL_LEADS = frozenset("\t\r\n")


# -- cell readers: text -> field value, ValueError with a user-facing message ----------


def read_text(cell: str) -> str:
    return cell


def read_list(cell: str) -> list[str]:
    return [v.strip() for v in cell.split(LIST_SEPARATOR) if v.strip()]


def read_date(cell: str) -> str:
    """``YYYY-MM-DD`` or ``DD/MM/YYYY`` -> ISO text (pydantic makes it a date)."""
    if match := _FRENCH_DATE.match(cell):
        day, month, year = (int(g) for g in match.groups())
    elif _ISO_DATE.match(cell):
        year, month, day = (int(p) for p in cell.split("-"))
    else:
        raise ValueError(f"{cell!r} is not a date; use YYYY-MM-DD or DD/MM/YYYY")
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        raise ValueError(f"{cell!r} is not a calendar date") from None


def read_partial_date(cell: str) -> str:
    """A date of birth: also ``YYYY``, ``YYYY-MM`` and ``MM/YYYY`` (checked by the model)."""
    if _FRENCH_DATE.match(cell):
        return read_date(cell)
    if match := _FRENCH_MONTH.match(cell):
        return f"{match.group(2)}-{int(match.group(1)):02d}"
    return cell


@lru_cache(maxsize=4096)  # enumerated cells repeat: fold each spelling once
def _key(text: str) -> str:
    return " ".join(fold(text).replace("\u2019", "'").replace("_", " ").replace("-", " ").split())


def enum_reader(allowed: Any, french: dict[str, str]) -> Callable[[str], str]:
    """Read one of a ``Literal``'s values, in any case, or one of its French words."""
    values: tuple[str, ...] = get_args(allowed)
    table = {_key(v): v for v in values} | {_key(k): v for k, v in french.items()}
    hint = ", ".join(values) + (f" (or in French: {', '.join(french)})" if french else "")

    def read(cell: str) -> str:
        try:
            return table[_key(cell)]
        except KeyError:
            raise ValueError(f"{cell!r} is not one of: {hint}") from None

    return read


def read_handling(cell: str) -> str:
    level = cell.upper().removeprefix("TLP:").strip().replace(" ", "+")
    if level not in get_args(Handling):
        raise ValueError(f"{cell!r} is not a TLP level: {', '.join(get_args(Handling))}")
    return level


def read_documents(cell: str) -> list[dict[str, str]]:
    documents = []
    for n, item in enumerate(read_list(cell), 1):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise ValueError(
                f"document {n} {item!r}: use type:number or type:number:country, "
                "e.g. passport:OB0123456:CD"
            )
        doc = {"type": parts[0], "number": parts[1]}
        if len(parts) == 3 and parts[2]:
            doc["country"] = parts[2]
        documents.append(doc)
    return documents


def person_reader(role: str) -> Callable[[str], list[dict[str, str]]]:
    def read(cell: str) -> list[dict[str, str]]:
        return [{"role": role, "name": name} for name in read_list(cell)]

    return read


# -- cell writers: field value -> text ---------------------------------------------------


def write_text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)


def write_list(values: list[str]) -> str:
    return LIST_SEPARATOR.join(values)


def write_documents(documents: list[dict[str, Any]]) -> str:
    return LIST_SEPARATOR.join(
        ":".join(p for p in (d["type"], d["number"], d.get("country")) if p) for d in documents
    )


def person_writer(role: str) -> Callable[[list[dict[str, Any]]], str]:
    def write(persons: list[dict[str, Any]]) -> str:
        return LIST_SEPARATOR.join(p["name"] for p in persons if p.get("role") == role)

    return write


def _starts_formula(cell: str) -> bool:
    """Whether ``cell``, past any leading ``'``, starts as a spreadsheet formula would."""
    text = cell.lstrip("'")
    if not text:
        return False
    first = text[0]
    return first in _CONTROL_LEADS or unicodedata.normalize("NFKC", first)[:1] in _FORMULA_LEADS


def escape_formula(cell: str) -> str:
    """Keep spreadsheets from running a cell as a formula (reversed by ``unescape_formula``)."""
    return "'" + cell if _starts_formula(cell) else cell


def unescape_formula(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and _starts_formula(cell) else cell


# -- the column sets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    field: str
    read: Callable[[str], Any] = read_text
    write: Callable[[Any], str] = write_text


@dataclass(frozen=True)
class RecordFormat:
    """The CSV form of one record kind."""

    name: str  # as in URLs and commands: "licensees"
    registry: type[RecordRegistry[Any]]
    create_model: type[BaseModel]
    out_model: type[BaseModel]
    columns: tuple[Column, ...]
    required: tuple[str, ...]
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    @property
    def kind(self) -> str:
        return self.registry.kind

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def read_row(self, cells: dict[str, str]) -> tuple[BaseModel | None, list[tuple[str, str]]]:
        """Validate one row (column name -> cell). Returns the model or (column, message)s."""
        values: dict[str, Any] = {}
        item_columns: dict[str, list[str]] = {}  # for list fields fed by several columns
        errors: list[tuple[str, str]] = []
        for name, raw in cells.items():
            cell = unescape_formula(raw.strip())
            if not cell:
                continue
            column = self._by_name[name]
            try:
                value = column.read(cell)
            except ValueError as exc:
                errors.append((name, str(exc)))
                continue
            if column.field == name:
                values[name] = value
            else:
                values.setdefault(column.field, []).extend(value)
                item_columns.setdefault(column.field, []).extend([name] * len(value))
        try:
            model = self.create_model.model_validate(values)
        except ValidationError as exc:
            failed = {name for name, _ in errors}
            for error in exc.errors(include_url=False):
                where, message = _locate(error, item_columns)
                if where not in failed:
                    errors.append((where, message))
            return None, errors
        return (None, errors) if errors else (model, [])

    def write_row(self, record: Any) -> list[str]:
        return [escape_formula(c.write(getattr(record, c.field))) for c in self.columns]


def _locate(error: Any, item_columns: dict[str, list[str]]) -> tuple[str, str]:
    """Name the CSV column of a pydantic error and say what is wrong in CSV terms."""
    loc = list(error["loc"])
    field = str(loc.pop(0))
    message = _message(error)
    if not loc:
        return (item_columns.get(field) or [field])[0], message
    index = loc.pop(0)
    column = field
    if isinstance(index, int) and field in item_columns:
        column = item_columns[field][index]
        index = item_columns[field][:index].count(column)
    what = {"documents": "document", "persons": "name"}.get(field, "value")
    where = f"{what} {index + 1}" if isinstance(index, int) else str(index)
    inner = [str(p) for p in loc if p != "name"]
    return column, f"{where}{(' ' + ' '.join(inner)) if inner else ''}: {message}"


def _message(error: Any) -> str:
    kind, message = error["type"], str(error["msg"])
    if kind == "missing":
        return "required; this cell must not be empty"
    if kind == "string_pattern_mismatch" and "[A-Z]{2}" in str(error.get("ctx", {})):
        return "use a two-letter country code, e.g. CD or CF"
    return message.removeprefix("Value error, ")


LICENCE_TYPES_FR = {
    "comptoir": "buying_house",
    "bureau d'achat": "buying_house",
    "maison d'achat": "buying_house",
    "collecteur": "collector",
    "exportateur": "exporter",
    "coopérative": "cooperative",
    "autre": "other",
}
STATUSES_FR = {
    "actif": "active",
    "suspendu": "suspended",
    "suspendue": "suspended",
    "révoqué": "revoked",
    "révoquée": "revoked",
    "expiré": "expired",
    "expirée": "expired",
}
PARTY_KINDS_FR = {
    "personne": "person",
    "personne physique": "person",
    "personne morale": "organisation",
    "organization": "organisation",
}
REASONS_FR = {
    "contrebande": "smuggling",
    "fraude": "fraud",
    "faux certificat kp": "fake_kp_certificate",
    "blanchiment": "money_laundering",
    "blanchiment d'argent": "money_laundering",
    "violation d'embargo": "embargo_breach",
    "autre": "other",
}
RISK_LEVELS_FR = {
    "faible": "low",
    "moyen": "medium",
    "moyenne": "medium",
    "élevé": "high",
    "élevée": "high",
}

LICENSEES = RecordFormat(
    name="licensees",
    registry=LicenseeRegistry,
    create_model=LicenseeCreate,
    out_model=LicenseeOut,
    columns=(
        Column("licence_number", "licence_number"),
        Column("licence_type", "licence_type", enum_reader(LicenceType, LICENCE_TYPES_FR)),
        Column("legal_name", "legal_name"),
        Column("trade_names", "trade_names", read_list, write_list),
        Column("address", "address"),
        Column("region", "region"),
        Column("issued_on", "issued_on", read_date),
        Column("expires_on", "expires_on", read_date),
        Column("status", "status", enum_reader(LicenceStatus, STATUSES_FR)),
        Column("handling", "handling", read_handling),
        Column("directors", "persons", person_reader("director"), person_writer("director")),
        Column(
            "beneficial_owners",
            "persons",
            person_reader("beneficial_owner"),
            person_writer("beneficial_owner"),
        ),
    ),
    required=("licence_number", "licence_type", "legal_name"),
)

SUBJECTS = RecordFormat(
    name="subjects",
    registry=SubjectRegistry,
    create_model=SubjectCreate,
    out_model=SubjectOut,
    columns=(
        Column("kind", "kind", enum_reader(PartyKind, PARTY_KINDS_FR)),
        Column("names", "names", read_list, write_list),
        Column("aliases", "aliases", read_list, write_list),
        Column("date_of_birth", "date_of_birth", read_partial_date),
        Column("nationality", "nationality"),
        Column("documents", "documents", read_documents, write_documents),
        Column("linked_licence_numbers", "linked_licence_numbers", read_list, write_list),
        Column("reason_category", "reason_category", enum_reader(ReasonCategory, REASONS_FR)),
        Column("risk_level", "risk_level", enum_reader(RiskLevel, RISK_LEVELS_FR)),
        Column("narrative", "narrative"),
        Column("source_agency", "source_agency"),
        Column("handling", "handling", read_handling),
    ),
    required=("kind", "names", "reason_category"),
)

FORMATS: dict[str, RecordFormat] = {f.name: f for f in (LICENSEES, SUBJECTS)}
