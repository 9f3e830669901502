"""A console form holding U+0000 or a non-character is refused next to its field, in the
user's language, and nothing is written (it used to be a 500 on PostgreSQL)."""

from __future__ import annotations

import re

import pytest

from tests.console.test_pages import field_error

MESSAGES = {
    "en": "This text holds a character that cannot be stored (U+0000 or a non-character).",
    "fr": "Ce texte contient un caractère qui ne peut pas être enregistré (U+0000 ou un "
    "non-caractère).",
}


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("bad", ["Comptoir\x00du Lom", "Comptoir \ufffe", "\ufdd0"])
def test_unstorable_text_in_a_form_is_a_field_error_in_the_users_language(
    shared_console, language, bad
):
    console = shared_console.as_user("analyst1")
    refused = console.post(
        "/console/licensees",
        {
            "licence_number": "CM-NUL-001",
            "licence_type": "buying_house",
            "legal_name": bad,
            "handling": "GREEN",
            "status": "active",
        },
        headers={"Accept-Language": language},
    )
    assert refused.status_code == 422
    assert field_error(refused.text, "legal_name") == MESSAGES[language]
    listed = console.get("/console/licensees", params={"q": "CM-NUL-001"})
    assert not re.search(r"CM-NUL-001</", listed.text)
