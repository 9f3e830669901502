"""Words shown for the codes the services use (categories, states, roles, ...).

Each is an English msgid marked with ``N_``; templates translate it with ``label()``.
An unknown code is shown as it is.
"""

from __future__ import annotations

from .i18n import N_

LABELS: dict[str, dict[str, str]] = {
    "role": {
        "admin": N_("Administrator"),
        "analyst": N_("Analyst"),
        "officer": N_("Officer"),
        "auditor": N_("Auditor"),
    },
    "category": {
        "seizure": N_("Seizure"),
        "smuggling_route": N_("Smuggling route"),
        "suspect_movement": N_("Suspect movement"),
        "fake_kp_certificate": N_("Fake KP certificate"),
        "cash_movement": N_("Cash movement"),
        "licence_suspended_revoked": N_("Licence suspended or revoked"),
        "embargo_breach": N_("Embargo breach"),
        "other": N_("Other"),
    },
    "severity": {"info": N_("Information"), "warning": N_("Warning"), "urgent": N_("Urgent")},
    "recipient_state": {
        "queued": N_("Queued"),
        "delivered": N_("Delivered"),
        "read": N_("Read"),
        "acted": N_("Acted upon"),
        "failed": N_("Failed"),
        "expired": N_("Expired"),
        "withheld": N_("Withheld"),
    },
    "alert_status": {"active": N_("Active"), "retracted": N_("Retracted")},
    "direction": {"inbound": N_("Received"), "outbound": N_("Sent")},
    "licence_type": {
        "buying_house": N_("Buying house (comptoir)"),
        "collector": N_("Collector"),
        "exporter": N_("Exporter"),
        "cooperative": N_("Cooperative"),
        "other": N_("Other"),
    },
    "licence_status": {
        "active": N_("Active"),
        "suspended": N_("Suspended"),
        "revoked": N_("Revoked"),
        "expired": N_("Expired"),
    },
    "party_kind": {"person": N_("Person"), "organisation": N_("Organisation")},
    "reason_category": {
        "smuggling": N_("Smuggling"),
        "fraud": N_("Fraud"),
        "fake_kp_certificate": N_("Fake KP certificate"),
        "money_laundering": N_("Money laundering"),
        "embargo_breach": N_("Embargo breach"),
        "other": N_("Other"),
    },
    "risk_level": {"low": N_("Low"), "medium": N_("Medium"), "high": N_("High")},
    "person_role": {
        "director": N_("Director"),
        "beneficial_owner": N_("Beneficial owner"),
        "manager": N_("Manager"),
        "other": N_("Other"),
    },
    "peer_status": {"active": N_("Active"), "suspended": N_("Suspended"), "removed": N_("Removed")},
    "record_action": {"create": N_("Created"), "update": N_("Updated"), "delete": N_("Deleted")},
    "record_kind": {"licensee": N_("Licensee"), "subject": N_("Subject")},
    "import_kind": {"licensees": N_("Licensees"), "subjects": N_("Subjects")},
    "strength": {"strong": N_("strong"), "possible": N_("possible"), "weak": N_("weak")},
    "peer_answer": {
        "answered": N_("answered"),
        "waiting": N_("waiting for the answer"),
        "no_answer": N_("did not answer in time"),
        "refused": N_("refused the query"),
        "expired": N_("could not be reached"),
    },
    "match_feature": {
        "names": N_("Names"),
        "date_of_birth": N_("Date of birth"),
        "nationality": N_("Nationality"),
        "document": N_("Identity document"),
        "licence": N_("Licence number"),
        "legal_form": N_("Legal form"),
        "title": N_("Title"),
    },
    # A peer's refusal of what this node sent, by its error code (protocol.md §8).
    "peer_refusal": {
        "quota_exceeded": N_(
            "The peer's daily quota for this node is used up; ask again after midnight UTC."
        ),
        "not_permitted": N_("The peer's sharing agreement with this node does not allow it."),
        "expired": N_("It expired before it could be delivered."),
    },
    "disclosure_status": {
        "pending": N_("Pending"),
        "granted": N_("Granted"),
        "denied": N_("Denied"),
    },
    "scope": {"local": N_("This node only"), "federation": N_("This node and the peers")},
    "user_state": {"active": N_("Active"), "disabled": N_("Disabled"), "locked": N_("Locked")},
}

# Field names as shown next to form inputs and in history tables.
FIELDS: dict[str, str] = {
    "licence_number": N_("Licence number"),
    "licence_type": N_("Licence type"),
    "legal_name": N_("Legal name"),
    "trade_names": N_("Trade names"),
    "persons": N_("Persons"),
    "directors": N_("Directors"),
    "beneficial_owners": N_("Beneficial owners"),
    "address": N_("Address"),
    "region": N_("Region"),
    "issued_on": N_("Issued on"),
    "expires_on": N_("Expires on"),
    "status": N_("Status"),
    "handling": N_("Handling (TLP)"),
    "kind": N_("Kind"),
    "names": N_("Names"),
    "aliases": N_("Aliases"),
    "date_of_birth": N_("Date of birth"),
    "nationality": N_("Nationality"),
    "documents": N_("Identity documents"),
    "linked_licence_numbers": N_("Linked licence numbers"),
    "reason_category": N_("Reason"),
    "risk_level": N_("Risk level"),
    "narrative": N_("Narrative"),
    "source_agency": N_("Source agency"),
    "category": N_("Category"),
    "severity": N_("Severity"),
    "title": N_("Title"),
    "body": N_("Message"),
    "place": N_("Place"),
    "country": N_("Country"),
    "locality": N_("Locality"),
    "expires_at": N_("Expires"),
    "references": N_("References"),
    "recipients": N_("Recipients"),
    "reason": N_("Reason"),
    "linked_licences": N_("Linked licence numbers"),
}


def label(group: str, code: str | None) -> str:
    """The msgid for ``code`` in ``group`` (untranslated; templates translate it)."""
    if code is None:
        return ""
    return LABELS.get(group, {}).get(code, code)


def field_label(name: str) -> str:
    return FIELDS.get(name, name)
