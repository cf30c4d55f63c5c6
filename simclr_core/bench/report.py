"""Markdown for the terminal and for BENCHMARKS.md.

The generated part of BENCHMARKS.md is everything above the notes marker; the hand-written
profile notes below it ("Where the time goes") survive every regeneration.
"""

from __future__ import annotations

import time
from pathlib import Path

from simclr_core.bench.core import Check, Section

NOTES_MARKER = "<!-- bench:notes (hand-written below this line; kept when the tables are regenerated) -->"
DEFAULT_NOTES = "## Where the time goes\n\n(Profile notes go here.)\n"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table; cells are escaped for pipes."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    out = [line(headers), "| " + " | ".join("---" for _ in headers) + " |"]
    out += [line(r + [""] * (len(headers) - len(r))) for r in rows]
    return "\n".join(out)


def render_section(section: Section) -> str:
    parts = [f"## {section.title}", ""]
    if section.rows:
        parts += [table(section.headers, section.rows), ""]
    for caption, headers, rows in section.extra_tables:
        parts += [f"**{caption}**", "", table(headers, rows), ""]
    parts += [f"- {note}" for note in section.notes]
    parts.append(f"- (section measured in {section.seconds:.0f} s)")
    return "\n".join(parts).rstrip() + "\n"


def _met(check: Check) -> str:
    return {True: "yes", False: "**no**", None: "not measured"}[check.met]


def render_checks(checks: list[Check]) -> str:
    return table(["target (issue 6)", "measured", "goal", "met"], [[c.name, c.measured, c.target, _met(c)] for c in checks])


def render(sections: list[Section], machine: dict[str, str], command: str, quick: bool) -> str:
    """The whole generated block: header, machine, targets summary, each section."""
    checks = [c for s in sections for c in s.checks]
    parts = [
        "# Benchmarks",
        "",
        f"Regenerate with `{command}` (the tables above the notes marker are rewritten; the notes are kept).",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        + (" with --quick (smoke-test sizes: not the real figures)." if quick else "."),
        "",
        "## Machine",
        "",
        table(["", ""], [[k, v] for k, v in machine.items()]),
        "",
    ]
    if checks:
        parts += ["## Targets", "", render_checks(checks), ""]
    parts += [render_section(s) for s in sections]
    return "\n".join(parts)


def write(path: Path, generated: str) -> None:
    """Replace the generated block of ``path``, keeping the hand-written notes below the marker."""
    notes = DEFAULT_NOTES
    if path.is_file():
        old = path.read_text()
        if NOTES_MARKER in old:
            notes = old.split(NOTES_MARKER, 1)[1].lstrip("\n")
    path.write_text(generated.rstrip() + "\n\n" + NOTES_MARKER + "\n\n" + notes)
