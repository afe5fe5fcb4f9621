"""Device ids and topic names never carry MQTT wildcards, separators or spaces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.contract.topics import Topics, check_prefix, slug


def test_slug_examples() -> None:
    assert slug("Chauffe-eau Salle/Bain #2") == "chauffe-eau-salle-bain-2"
    assert slug("HQ2235ABCDE") == "hq2235abcde"
    assert slug("Linky Électrique") == "linky-electrique"


@given(st.text(min_size=1))
def test_slug_is_always_topic_safe(text: str) -> None:
    try:
        result = slug(text)
    except ValueError:
        return
    assert result and not set(result) & set("#+/ \x00")
    assert slug(result) == result


def test_prefix_rules() -> None:
    assert check_prefix("enerbox/site-42") == "enerbox/site-42"
    for bad in ("enerbox/#", "a//b", "/enerbox", "ener box", "enerbox/+"):
        with pytest.raises(ValueError):
            check_prefix(bad)


def test_topics() -> None:
    t = Topics("enerbox/site-1", "teleinfo")
    assert t.status == "enerbox/site-1/teleinfo/status"
    assert t.state("linky") == "enerbox/site-1/teleinfo/linky/state"
    with pytest.raises(ValueError):
        t.state("a/b")
