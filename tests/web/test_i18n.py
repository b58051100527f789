"""Every string the portal shows has a French translation, and the catalogs agree."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from orderbridge.web import i18n

WEB = Path(i18n.__file__).parent
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "N_": None}
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]


def msgids() -> dict[str, str]:
    """Every msgid of the web package's code and templates → where it was found first."""
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        WEB, METHODS, keywords=KEYWORDS, options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    ):
        text = message[0] if isinstance(message, tuple) else message  # a plural is keyed by its singular
        if text:
            found.setdefault(text, f"{filename}:{lineno}")
    return found


def test_the_code_and_templates_have_strings_to_translate() -> None:
    assert "Sign in" in msgids()


def test_every_msgid_has_a_french_translation() -> None:
    french = i18n.catalog("fr")
    missing = sorted(f"{where}: {text!r}" for text, where in msgids().items() if not french.get(text))
    assert not missing, "add these to a .po file under web/locale/fr/LC_MESSAGES/:\n" + "\n".join(missing)


def test_two_catalog_files_never_translate_one_msgid_differently() -> None:
    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po in sorted((WEB / "locale" / "fr" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh, locale="fr"):
                if not message.id or not message.string:
                    continue
                key = str(message.id)
                if key in seen and seen[key][1] != message.string:
                    clashes.append(f"{key!r}: {seen[key][0]} vs {po.name}")
                seen.setdefault(key, (po.name, str(message.string)))
    assert not clashes, "\n".join(clashes)


def test_french_placeholders_match_the_english_ones() -> None:
    import re

    placeholder = re.compile(r"%\((\w+)\)[sd]")
    wrong = []
    for message in i18n.catalog("fr"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(placeholder.findall(ids[0]))
        for text in strings:
            if text and set(placeholder.findall(text)) != wanted:
                wrong.append(f"{ids[0]!r} → {text!r}")
    assert not wrong, "\n".join(wrong)


def test_ago_says_past_moments_are_past_in_both_languages() -> None:
    from datetime import UTC, datetime, timedelta

    from orderbridge.web.templating import ago

    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    with i18n.using("en"):
        assert ago(now - timedelta(minutes=3), now) == "3 minutes ago"
        assert ago(now + timedelta(minutes=3), now) == "in 3 minutes"
    with i18n.using("fr"):
        assert ago(now - timedelta(minutes=3), now) == "il y a 3 minutes"
