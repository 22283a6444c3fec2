"""The docs live in the repository and stay true to it.

- No Python or Markdown file cites the design notes or code conventions that were once kept
  outside the repository (``DESIGN "..."``, ``CONVENTIONS n``, ``../shared/DESIGN.md``): a clone
  has no such files. Citations name a section of ``docs/design.md`` instead.
- Every citation of a section (written ``docs/design.md "Time"``) names a heading that exists
  there, and the headings are unique, so a citation points at one place.
- The paths and names that ``docs/design.md`` gives (files, and the function or class of each
  paper equation) exist, and the README's layout table has a row for every subpackage.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN_DOC = ROOT / "docs" / "design.md"
SUFFIXES = {".py", ".md"}
SKIP_DIRS = {"build", "dist", "bench_results", "__pycache__", "node_modules"}

# The words of the old external notes, as this file must not spell them in its own text.
_OLD = ("DES" + "IGN", "CONVEN" + "TIONS")
OUTSIDE = re.compile(
    rf"\b(?:{_OLD[0]}|{_OLD[1]})\b"  # DESIGN "Time", DESIGN's baseline, CONVENTIONS 3, ...
    r"|\.\./shared/(?!data\b)"  # ../shared/<anything but the real-footage data folder>
    r"|\bpaper\.txt\b"
)
CITATION = re.compile(r'docs/design\.md`{0,2},?\s+"([^"\n]+)"')
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def repo_files() -> list[Path]:
    """Python and Markdown files of the working tree that git does not ignore (new ones too)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        names = [n for n in out.split("\0") if n]
        files = [ROOT / n for n in names]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a clone: walk the tree
        files = [
            p
            for p in ROOT.rglob("*")
            if not any(
                part.startswith(".") or part in SKIP_DIRS or part.endswith(".egg-info")
                for part in p.relative_to(ROOT).parts[:-1]
            )
        ]
    return sorted(p for p in files if p.suffix in SUFFIXES and p.is_file())


def headings(text: str) -> list[str]:
    """Markdown headings of ``text``, outside fenced code blocks."""
    found, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            found.append(m.group(1))
    return found


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section of ``text`` (up to the next heading of level 2)."""
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_the_scan_sees_the_tree() -> None:
    rel = {p.relative_to(ROOT).as_posix() for p in repo_files()}
    assert {"README.md", "docs/design.md", "core/timing.py", "tests/test_docs.py"} <= rel


def test_nothing_cites_notes_outside_the_repository() -> None:
    offenders = []
    for path in repo_files():
        if path == Path(__file__).resolve():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, (
        "these lines point at notes outside the repository; cite a section of docs/design.md "
        'instead, as docs/design.md "Time":\n' + "\n".join(offenders)
    )


def test_the_outside_pattern_catches_the_old_forms() -> None:
    d, c = _OLD
    for line in (
        f'(see {d} "Time")',
        f"the torso baseline of {d}.",
        f"against {d}'s baseline",
        f"a worker thread ({c} 2)",
        f"../shared/{d}.md",
        "../shared/paper.txt",
    ):
        assert OUTSIDE.search(line), line
    for line in (
        'docs/design.md "Time"',
        "the real footage in ../shared/data",
        "the design of the head",
    ):
        assert not OUTSIDE.search(line), line


def test_design_headings_are_unique() -> None:
    names = headings(DESIGN_DOC.read_text(encoding="utf-8"))
    twice = sorted({h for h in names if names.count(h) > 1})
    assert not twice, (
        f"headings used twice in docs/design.md (citations would be ambiguous): {twice}"
    )


def test_every_design_citation_names_an_existing_heading() -> None:
    names = set(headings(DESIGN_DOC.read_text(encoding="utf-8")))
    cited, broken = 0, []
    for path in repo_files():
        text = path.read_text(encoding="utf-8")
        for m in CITATION.finditer(text):
            cited += 1
            if m.group(1) not in names:
                n = text.count("\n", 0, m.start()) + 1
                broken.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)}")
    assert cited >= 10, f"only {cited} citations found: is the citation pattern still right?"
    assert not broken, (
        "citations of docs/design.md sections that do not exist (add the section or fix the "
        "name):\n" + "\n".join(broken)
    )


def test_citation_pattern_reads_both_forms() -> None:
    text = 'x (docs/design.md "Time") y (``docs/design.md``, "Rules of the house").'
    assert [m.group(1) for m in CITATION.finditer(text)] == ["Time", "Rules of the house"]


def test_paths_named_in_the_design_exist() -> None:
    text = DESIGN_DOC.read_text(encoding="utf-8")
    roots = ("core/", "app/", "widgets/", "tests/", "build_scripts/", "benchmarks/", "scripts/")
    roots += ("resources/", "docs/", "pyproject.toml", ".ci/")
    paths = {p for p in re.findall(r"`([^`\s]+)`", text) if p.startswith(roots)}
    assert len(paths) >= 20
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/design.md names paths that do not exist: {missing}"


def _defines(source: str, name: str) -> bool:
    return bool(
        re.search(
            rf"^\s*(?:def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\b\s*[:=]", source, re.M
        )
    )


def test_every_equation_home_exists() -> None:
    table = section(DESIGN_DOC.read_text(encoding="utf-8"), "Where each equation lives")
    rows = [r for r in table.splitlines() if r.startswith("| ") and "`" in r]
    assert len(rows) >= 15
    wrong = []
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        file, name = cells[2].strip("`"), cells[3].strip("`")
        source_path = ROOT / file
        if not source_path.is_file():
            wrong.append(f"{file} does not exist")
            continue
        source = source_path.read_text(encoding="utf-8")
        for part in name.split("."):
            if not _defines(source, part):
                wrong.append(f"{file} defines no {part} (row: {cells[0]})")
    assert not wrong, "docs/design.md's equation table is out of date:\n" + "\n".join(wrong)


def test_readme_links_the_design_and_lists_every_subpackage() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/design.md)" in readme
    layout = section(readme, "Layout")
    packages = [p.parent for p in sorted((ROOT / "core").glob("*/__init__.py"))]
    packages.append(ROOT / "app" / "commands")
    missing = [
        p.relative_to(ROOT).as_posix() + "/"
        for p in packages
        if f"| `{p.relative_to(ROOT).as_posix()}/`" not in layout
    ]
    assert not missing, f"README's Layout table has no row for {missing}"


def test_each_part_has_one_name() -> None:
    """docs/design.md "Naming": package, CLI part, model folder and config class agree."""
    import importlib

    from talkstudio.app import cli
    from talkstudio.core.subject import MODEL_PARTS

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    train = sub.choices["train"]
    part = next(a for a in train._actions if a.dest == "part")
    assert tuple(part.choices) == MODEL_PARTS
    for name in MODEL_PARTS:
        module = importlib.import_module(f"talkstudio.core.{name}.config")
        assert hasattr(module, f"{name.capitalize()}Config"), name
