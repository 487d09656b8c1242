"""CITATION.cff carries the keys the Citation File Format 1.2.0 requires, with the types it prescribes."""

from __future__ import annotations

import datetime
from pathlib import Path

import yaml

import mfgsolve

ROOT = Path(__file__).resolve().parents[1]


def test_citation_cff_is_valid_cff_1_2():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    # CFF 1.2.0: cff-version, message, title and authors are required; authors is a non-empty list of
    # persons (family-names/given-names) or entities (name).
    assert cff["cff-version"] == "1.2.0"
    assert isinstance(cff["message"], str) and cff["message"]
    assert isinstance(cff["title"], str) and cff["title"]
    assert cff["authors"] and all("name" in a or "family-names" in a for a in cff["authors"])
    assert cff["type"] in {"software", "dataset"}
    datetime.date.fromisoformat(str(cff["date-released"]))
    assert str(cff["version"]) == mfgsolve.__version__
