"""Markdown for the terminal and for BENCHMARKS.md.

BENCHMARKS.md = header (machine, targets) + one marked block per section + hand-written notes.
Writing replaces the blocks of the sections just measured and keeps the others, so
``bench loss --out BENCHMARKS.md`` refreshes one section; ``bench --out BENCHMARKS.md``
refreshes them all. The notes below the notes marker ("Where the time goes") are never touched.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from simclr_core.bench.core import Check, Section

NOTES_MARKER = "<!-- bench:notes (hand-written below this line; kept when the tables are regenerated) -->"
DEFAULT_NOTES = "## Where the time goes\n\n(Profile notes go here.)\n"
REGENERATE = "python -m simclr_core bench --out BENCHMARKS.md"
_BLOCK = re.compile(r"<!-- bench:section (\w+) -->\n(.*?)<!-- bench:end \1 -->", re.S)
_CHECKS = re.compile(r"<!-- bench:checks (.*?) -->")


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table; cells are escaped for pipes."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    out = [line(headers), "| " + " | ".join("---" for _ in headers) + " |"]
    out += [line(r + [""] * (len(headers) - len(r))) for r in rows]
    return "\n".join(out)


def render_section(section: Section, quick: bool = False) -> str:
    """One section as markdown: title, main table, extra tables, notes, when and how long."""
    title = section.title + (" (--quick: smoke-test sizes, not the real figures)" if quick else "")
    parts = [f"## {title}", ""]
    if section.rows:
        parts += [table(section.headers, section.rows), ""]
    for caption, headers, rows in section.extra_tables:
        parts += [f"**{caption}**", "", table(headers, rows), ""]
    parts += [f"- {note}" for note in section.notes]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    parts.append(f"- Measured {when} in {section.seconds:.0f} s.")
    return "\n".join(parts).rstrip() + "\n"


def _met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not measured"}[met]


def render_checks(checks: list[Check]) -> str:
    return table(
        ["target (issue 6)", "measured", "goal", "met"], [[c.name, c.measured, c.target, _met(c.met)] for c in checks]
    )


def _block(section: Section, quick: bool) -> str:
    checks = json.dumps([[c.name, c.measured, c.target, c.met] for c in section.checks])
    return (
        f"<!-- bench:section {section.key} -->\n{render_section(section, quick)}"
        f"<!-- bench:checks {checks} -->\n<!-- bench:end {section.key} -->"
    )


def _checks_of(block: str) -> list[Check]:
    found = _CHECKS.search(block)
    return [Check(*c) for c in json.loads(found.group(1))] if found else []


def _machine_table(old: str) -> str:
    """The machine table of an existing BENCHMARKS.md (empty table when it has none)."""
    found = re.search(r"## Machine\n\n(\|.*?)\n\n", old, re.S)
    return found.group(1) if found else table(["", ""], [])


def merge(old: str, sections: list[Section], machine: dict[str, str] | None, order: list[str], quick: bool) -> str:
    """The new BENCHMARKS.md text: fresh blocks for ``sections``, old blocks for the rest, notes kept.

    ``machine`` None keeps the old machine table (a section measured elsewhere, e.g. the GPU block, says its own).
    """
    notes = old.split(NOTES_MARKER, 1)[1].lstrip("\n") if NOTES_MARKER in old else DEFAULT_NOTES
    blocks = {m.group(1): m.group(0) for m in _BLOCK.finditer(old)}
    blocks.update({s.key: _block(s, quick) for s in sections})
    keys = [k for k in order if k in blocks] + sorted(k for k in blocks if k not in order)
    checks = [c for k in keys for c in _checks_of(blocks[k])]
    parts = [
        "# Benchmarks",
        "",
        "This project against the seed tutorial's recipe (`../shared/bench/tutorial_reference.py`), measured side by "
        f"side on the same machine in the same run. Regenerate everything with `{REGENERATE}`, or one section with "
        "`python -m simclr_core bench SECTION --out BENCHMARKS.md` (sections: " + ", ".join(order) + "); the notes at "
        "the end are kept. Each section says when it was measured.",
        "",
        "## Machine",
        "",
        table(["", ""], [[k, v] for k, v in machine.items()]) if machine is not None else _machine_table(old),
        "",
    ]
    if checks:
        parts += ["## Targets", "", render_checks(checks), ""]
    parts += [blocks[k] + "\n" for k in keys]
    return "\n".join(parts).rstrip() + "\n\n" + NOTES_MARKER + "\n\n" + notes


def write(path: Path, sections: list[Section], machine: dict[str, str] | None, order: list[str], quick: bool) -> None:
    """Update ``path`` in place (see ``merge``); creates it when missing."""
    old = path.read_text() if path.is_file() else ""
    path.write_text(merge(old, sections, machine, order, quick))
