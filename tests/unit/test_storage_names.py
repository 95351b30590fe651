"""``safe_name``: file names the package makes are cut by UTF-8 bytes, between characters."""

from __future__ import annotations

import pytest

from urlsession_module._storage import NAME_BYTES, background_key, part_name, safe_name


@pytest.mark.parametrize(
    "text", ["é" * 200, "日" * 120, "🙂a" * 90, "a" * 500, "x" + "日" * 60 + "ab"]
)
def test_a_long_name_is_cut_to_the_byte_budget_between_characters(text: str) -> None:
    """At most NAME_BYTES bytes of UTF-8, a prefix of the (made safe) name: no character is
    split, so the name still decodes."""
    name = safe_name(text)
    assert 0 < len(name.encode()) <= NAME_BYTES
    assert len(name.encode()) > NAME_BYTES - 4  # nothing more than one character short
    assert name.encode().decode("utf-8") == name


def test_a_short_extension_survives_the_cut() -> None:
    """A cut name keeps a short extension, so the file's type still shows."""
    name = safe_name("報告書" * 30 + ".pdf")
    assert name.endswith("報.pdf") or name.endswith("告.pdf") or name.endswith("書.pdf")
    assert len(name.encode()) <= NAME_BYTES


def test_short_names_are_unchanged_and_unsafe_characters_replaced() -> None:
    """What fits is kept as it was; separators and controls become '_', leading dots go."""
    assert safe_name("report-2024_v1.pdf") == "report-2024_v1.pdf"
    assert safe_name("日本語.txt") == "日本語.txt"
    assert safe_name("../etc/passwd") == "_etc_passwd"
    assert safe_name("a\x00b/c") == "a_b_c"
    assert safe_name("...", "download") == "download"


def test_names_made_from_two_safe_names_fit_one_path_component() -> None:
    """A download's ``<task>-<name>``, a part file and a background folder fit 255 bytes."""
    long = "日" * 300
    assert len(f"{safe_name(long)}-{safe_name(long)}".encode()) <= 255
    assert len(part_name(long).encode()) <= 255
    assert len(background_key(long).encode()) <= 255
