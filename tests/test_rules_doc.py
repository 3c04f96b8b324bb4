"""docs/rules.md resolves every DOMAIN rule id the repository cites, and lists no other.

DOMAIN.md (the domain specification) lives outside the repository, so code, tests and docs
that cite it by id must be readable from a clone alone: each cited id needs a bullet in
``docs/rules.md`` (``- `<id>` — <statement>``), and a bullet whose id nothing cites any more is
stale. The scan covers every text file of the repository except ``docs/rules.md`` and this
module, and skips ``.venv``, ``var``, ``.git`` and caches.

A citation is one of (the canonical form, as listed in the doc, in brackets):

* a section with ``§``: ``§B.4.1``, ``§0.3.5``, ``§0.3-3`` [``B.4.1``, ``0.3.5``, ``0.3.3``];
  without ``§`` only after ``DOMAIN``, ``Part`` or ``(``: ``DOMAIN C.7``, ``(C.4.1)``;
* a family id: ``AC-D16``, ``GP-E01``, ``HO-L03`` (ranges ``AC-S01..S05``, ``GP-E01–E10``
  cite every id between), or the same in a test name: ``test_ac_p01_p10_p15_…`` cites
  ``AC-P01``, ``AC-P10`` and ``AC-P15``;
* a decision: ``DECIDE-B7``, ``…_decide_c6`` [``DECIDE-B7``, ``DECIDE-C6``];
* a GPU transition of §C.3.2: ``G1``…``G10`` (ranges ``G2–G8``), only in files whose path
  names ``evidence`` (elsewhere ``G1`` is a lot or product code of a fixture);
* the arguments of a test's ``spec`` marker (``@pytest.mark.spec("AC-D23", "HO-D12")``, the
  `nexo_testing` marker that carries the ids a test checks; its name says the behaviour):
  each argument must be one canonical id that ``docs/rules.md`` lists.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "docs" / "rules.md"
SELF = Path(__file__).resolve()

SKIP_DIRS = {"var", "node_modules", "dist", "test-artifacts", "__pycache__"}
TEXT_SUFFIXES = {
    ".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt", ".tpl", ".sql", ".html", ".js",
    ".css", ".mako", ".ini", ".cfg", ".sh",
}  # fmt: skip
TEXT_NAMES = {"Makefile", "Dockerfile"}

_RANGE = r"(?:\s?(?:\.\.|–)\s?(?:[A-Z]{2}-)?[A-Z]?(?P<end>\d{2}))?"
SECTION = re.compile(
    r"§\s?(?P<s>(?:0|[A-D])\.\d+(?:[.-]\d+)*)"
    r"|(?:\bDOMAIN\s+|\bPart\s+|\()(?P<b>[A-D]\.\d+(?:\.\d+)*)(?![\w-]|\.\d)"
)
FAMILY = re.compile(r"\b(?P<fam>AC-[DPS]|GP-[DE]|HO-[DFL])(?P<n>\d{2})\b" + _RANGE)
FAMILY_SNAKE = re.compile(
    r"(?<![a-z0-9])(?P<fam>ac_[dps]|gp_[de]|ho_[dfl])(?P<n>\d{2})(?P<more>(?:_[a-z]\d{2})*)(?!\d)"
)
DECIDE = re.compile(r"\bDECIDE-(?P<u>[A-D]\d+)\b|(?<![a-z0-9])decide_(?P<l>[a-d]\d+)(?!\d)")
TRANSITION = re.compile(r"\bG(?P<n>10|[1-9])\b(?:\s?(?:\.\.|–)\s?G?(?P<end>10|[1-9])\b)?")
BULLET = re.compile(r"^- `(?P<id>[^`]+)`", re.MULTILINE)
LOCATION = re.compile(r"`(?P<module>(?:sales|orders|evidence|contracts)(?:\.[a-z_]+)*)`")


def cited_ids(text: str, *, evidence: bool = False) -> set[str]:
    """Rule ids cited in ``text``, canonical (``B.4.1``, ``AC-D16``, ``DECIDE-C6``, ``G5``)."""
    ids: set[str] = set()
    for m in SECTION.finditer(text):
        ids.add((m["s"] or m["b"]).replace("-", "."))
    for m in FAMILY.finditer(text):
        start, end = int(m["n"]), int(m["end"] or m["n"])
        ids.update(f"{m['fam']}{n:02d}" for n in range(start, max(start, end) + 1))
    for m in FAMILY_SNAKE.finditer(text):
        fam = m["fam"].upper().replace("_", "-")
        letter = fam[-1].lower()
        ids.add(f"{fam}{m['n']}")
        for more in re.findall(r"_([a-z])(\d{2})", m["more"]):
            if more[0] == letter:  # ``ho_l02_l03``; ``_x12`` is not an id of this family
                ids.add(f"{fam}{more[1]}")
    for m in DECIDE.finditer(text):
        ids.add(f"DECIDE-{(m['u'] or m['l']).upper()}")
    if evidence:
        for m in TRANSITION.finditer(text):
            start, end = int(m["n"]), int(m["end"] or m["n"])
            ids.update(f"G{n}" for n in range(start, max(start, end) + 1))
    return ids


def spec_marker_ids(source: str) -> list[str | None]:
    """The arguments of every ``pytest.mark.spec(...)`` in Python `source`, in order (None
    for an argument that is not a string literal)."""
    found: list[str | None] = []
    for node in ast.walk(ast.parse(source)):
        func = node.func if isinstance(node, ast.Call) else None
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "spec"
            and isinstance(func.value, ast.Attribute)
            and func.value.attr == "mark"
        ):
            assert isinstance(node, ast.Call)
            for arg in node.args:
                is_text = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                found.append(arg.value if is_text else None)  # type: ignore[union-attr]
    return found


def repository_files(root: Path = ROOT) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [
            d
            for d in dirnames
            if d not in SKIP_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
        ]
        for name in filenames:
            path = Path(dirpath, name)
            is_text = path.suffix in TEXT_SUFFIXES or name in TEXT_NAMES
            if is_text and path.resolve() not in (RULES.resolve(), SELF):
                yield path


def repository_citations(root: Path = ROOT) -> dict[str, set[str]]:
    """Cited id → the repository-relative paths citing it."""
    where: dict[str, set[str]] = {}
    for path in repository_files(root):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        for rule in cited_ids(text, evidence="evidence" in rel):
            where.setdefault(rule, set()).add(rel)
        if path.suffix == ".py" and "mark.spec(" in text:
            for marked in spec_marker_ids(text):
                where.setdefault(str(marked), set()).add(rel)
    return where


def repository_spec_markers(root: Path = ROOT) -> dict[str, list[str | None]]:
    """Repository-relative path → the ``spec`` marker arguments of its tests."""
    out: dict[str, list[str | None]] = {}
    for path in repository_files(root):
        if path.suffix == ".py":
            text = path.read_text(encoding="utf-8", errors="replace")
            if "mark.spec(" in text:
                out[path.relative_to(root).as_posix()] = spec_marker_ids(text)
    return out


def listed_ids() -> list[str]:
    return BULLET.findall(RULES.read_text(encoding="utf-8"))


def test_every_cited_id_has_a_line() -> None:
    listed = set(listed_ids())
    missing = {k: sorted(v) for k, v in repository_citations().items() if k not in listed}
    assert missing == {}, "cite a rule only with a line for it in docs/rules.md"


def test_spec_markers_name_listed_ids() -> None:
    """Every ``spec`` marker argument is a string, exactly one id that docs/rules.md lists."""
    listed = set(listed_ids())
    markers = repository_spec_markers()
    assert markers, "tests carry their rule ids in the spec marker"
    wrong = {path: [a for a in args if a not in listed] for path, args in markers.items()}
    assert {path: args for path, args in wrong.items() if args} == {}


def test_spec_marker_arguments_are_read() -> None:
    source = """
import pytest

@pytest.mark.spec("AC-D23", "HO-D12")
def test_business_date() -> None: ...

@pytest.mark.spec(RULE)
async def test_other() -> None: ...

@pytest.mark.parametrize("x", [1])
def test_unmarked(x: int) -> None: ...
"""
    assert spec_marker_ids(source) == ["AC-D23", "HO-D12", None]


def test_every_listed_id_is_cited() -> None:
    cited = repository_citations()
    assert sorted(set(listed_ids()) - cited.keys()) == []


def test_each_id_is_listed_once() -> None:
    ids = listed_ids()
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


def test_every_location_named_is_a_module() -> None:
    """Where a line names the implementing package or layer, that import path exists."""
    named = set(LOCATION.findall(RULES.read_text(encoding="utf-8")))
    assert named, "the doc names where rules are implemented"
    assert sorted(m for m in named if importlib.util.find_spec(m) is None) == []


def test_the_forms_of_a_citation() -> None:
    text = """
        # stock (§A.4.4 rule 3, DOMAIN §0.3-3), DOMAIN C.7, billing (C.4.6), Part D.2
        RFC 7518 §3.2, version 3.12, python3.11, v1.B.2, B.4 of nothing
        AC-D16 and AC-S01..S05; HO-L03; GP-E09–E10; DECIDE-A2
        def test_ac_p01_p10_p15_breakdown(): ...
        def test_ho_f03_and_ho_l05_partial(): ...
        def test_reviewer_not_uploader_decide_c6(): ...
        def test_ho_f01_x12(): ...
        regla = "G9"  # G2–G4
    """
    assert cited_ids(text) == {
        "A.4.4", "0.3.3", "C.7", "C.4.6", "D.2",
        "AC-D16", "AC-S01", "AC-S02", "AC-S03", "AC-S04", "AC-S05", "HO-L03", "GP-E09",
        "GP-E10", "DECIDE-A2", "AC-P01", "AC-P10", "AC-P15", "HO-F03", "HO-L05",
        "DECIDE-C6", "HO-F01",
    }  # fmt: skip
    assert cited_ids(text, evidence=True) - cited_ids(text) == {"G2", "G3", "G4", "G9"}


def test_a_new_citation_without_a_line_fails(tmp_path: Path) -> None:
    """The scan finds an id cited in a new file, which the doc does not list; caches are skipped."""
    (tmp_path / "services" / "orders").mkdir(parents=True)
    (tmp_path / "services" / "orders" / "new.py").write_text('"""Fixes HO-D99 (§B.4.5)."""\n')
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "dep.py").write_text("# HO-D98\n")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "log.md").write_text("HO-D97\n")
    cited = repository_citations(tmp_path)
    assert cited == {"HO-D99": {"services/orders/new.py"}, "B.4.5": {"services/orders/new.py"}}
    assert set(cited) - set(listed_ids()) == {"HO-D99"}
