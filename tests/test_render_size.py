"""Gmail clips HTML over 102 KB: check and build fail above it and warn above 80 KB."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from composer.cli import main
from composer.model import Entry, Issue, Paragraph, Position, Section, Text
from composer.render import Rendered, render
from composer.render.size import CLIP_BYTES, WARN_BYTES, size_diagnostics

ROOT = Path(__file__).resolve().parents[1]
POS = Position("issues/2025-06.rst", 1, 1)


def rendered_of(size: int) -> Rendered:
    return Rendered(html="x" * size, text="", subject="", preheader="")


def issue_at(position: Position = POS) -> Issue:
    return Issue("The CoVar Zeitgeist: June, 2025", "2025-06", position=position)


def test_thresholds_are_102_and_80_kib() -> None:
    assert CLIP_BYTES == 104448 and WARN_BYTES == 81920


def test_no_diagnostic_up_to_80_kb() -> None:
    assert size_diagnostics(issue_at(), rendered_of(WARN_BYTES)) == []


def test_warning_above_80_kb_names_the_size() -> None:
    (d,) = size_diagnostics(issue_at(), rendered_of(WARN_BYTES + 1))
    assert str(d) == (
        "issues/2025-06.rst:1:1: warning: HTML body is 80.0 KB (81921 bytes), near Gmail's "
        "102 KB clip (104448 bytes) that hides the unsubscribe link; warned above 80 KB "
        "[html-large]"
    )


def test_error_above_102_kb_names_the_size() -> None:
    (d,) = size_diagnostics(issue_at(), rendered_of(106_800))
    assert str(d) == (
        "issues/2025-06.rst:1:1: error: HTML body is 104.3 KB (106800 bytes); Gmail clips "
        "messages over 102 KB (104448 bytes), hiding the unsubscribe link: shorten the issue "
        "[html-too-large]"
    )
    assert size_diagnostics(issue_at(), rendered_of(CLIP_BYTES))[0].code == "html-large"


def test_size_counts_utf8_bytes() -> None:
    assert Rendered(html="é" * 10, text="", subject="", preheader="").html_size == 20


def big_issue_rst(entries: int) -> str:
    lines = ["The CoVar Zeitgeist: June, 2025", "=" * 31, "An intro for a long issue.", ""]
    for s in range(entries // 20):
        title = f"Section {s}"
        lines += [title, "-" * len(title)]
        for e in range(20):
            n = s * 20 + e
            lines += [
                f"`Paper number {n} on a topic <https://example.com/papers/{n}>`_",
                "    " + "A summary sentence that goes on for a while about the paper. " * 4,
                "",
            ]
    return "\n".join(lines) + "\n"


def test_real_render_of_a_huge_issue_is_an_error(settings) -> None:
    issue = Issue(
        "The CoVar Zeitgeist: June, 2025",
        "2025-06",
        sections=tuple(
            Section(
                f"S{s}",
                tuple(
                    Entry(
                        f"Paper {s}-{e}",
                        f"https://example.com/{s}/{e}",
                        (Paragraph((Text("A fairly long summary sentence. " * 8),)),),
                    )
                    for e in range(20)
                ),
            )
            for s in range(12)
        ),
        position=POS,
    )
    rendered = render(issue, settings)
    assert rendered.html_size > CLIP_BYTES
    (d,) = size_diagnostics(issue, rendered)
    assert d.code == "html-too-large"


def test_build_refuses_an_issue_gmail_would_clip(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    path = tmp_path / "2025-06.rst"
    path.write_text(big_issue_rst(300), encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == (f"error: {path} has 1 error; fix it first (see `newsletter check`):")
    assert lines[1].startswith(f"{path}:1:1: error: HTML body is ")
    assert lines[1].endswith(
        "Gmail clips messages over 102 KB (104448 bytes), hiding the unsubscribe link: "
        "shorten the issue [html-too-large]"
    )
    assert len(lines) == 2 and result.stdout == ""
    assert not (tmp_path / "out").exists()
