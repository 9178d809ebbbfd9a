"""The archive against a hostile site folder, hostile issue text and an issue that cannot
be rendered: a crafted manifest or cache, planted symbolic links (in site/ and build/),
highlights full of markup. Real builds in temporary folders, pages read back with
html.parser as a browser's tokenizer sees them."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from composer.cli import main

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ("2024-11", "2025-05")
HOSTILE = (
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(2)">',
    '" onmouseover="alert(3)" x="',
    "</li></ul><iframe src=javascript:alert(4)></iframe>",
)


# --- helpers ----------------------------------------------------------------------------


def make_newsletter(folder: Path, months=SEEDS) -> Path:
    (folder / "issues").mkdir(parents=True)
    shutil.copy(ROOT / "newsletter.yaml", folder / "newsletter.yaml")
    for month in months:
        shutil.copy(ROOT / "issues" / f"{month}.rst", folder / "issues" / f"{month}.rst")
    return folder / "newsletter.yaml"


def add_june(folder: Path) -> Path:
    """A third issue, June 2025: the May issue under another title."""
    body = (folder / "issues" / "2025-05.rst").read_text(encoding="utf-8").split("\n", 2)[2]
    title = "The CoVar Zeitgeist: June, 2025"
    path = folder / "issues" / "2025-06.rst"
    path.write_text(f"{title}\n{'=' * len(title)}\n{body}", encoding="utf-8")
    return path


def run(config: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def names(self) -> set[str]:
        return {tag for tag, _ in self.tags}

    def handlers(self) -> list[str]:
        """Every on* attribute (an event handler a browser would run)."""
        return [f"{tag} {name}" for tag, attrs in self.tags for name in attrs if name[:2] == "on"]

    def hrefs(self) -> list[str]:
        return [a["href"] for _, a in self.tags if a.get("href")]

    def plain(self) -> str:
        return " ".join("".join(self.text).split())


def feed_contents(site: Path) -> list[str]:
    """The HTML of every feed entry's content, as a feed reader unescapes it."""
    root = ET.fromstring((site / "feed.xml").read_bytes())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    return [entry.find("a:content", ns).text for entry in root.findall("a:entry", ns)]


def assert_inert(html: str) -> Tags:
    """No script, no frame, no image and no event handler; no javascript: link."""
    page = Tags(html)
    assert page.names() & {"script", "iframe", "img", "object", "embed"} == set()
    assert page.handlers() == []
    assert [h for h in page.hrefs() if h.strip().lower().startswith("javascript")] == []
    return page


@pytest.fixture
def newsletter(tmp_path: Path, monkeypatch) -> Path:
    """A newsletter folder (the working folder) archived once into site/."""
    folder = tmp_path / "news"
    config = make_newsletter(folder)
    monkeypatch.chdir(folder)
    result = run(config, "archive", "-j", "1")
    assert result.exit_code == 0, result.output
    return config


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


# --- the manifest names paths outside the site ------------------------------------------


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_manifest_naming_a_file_outside_the_site_removes_nothing(newsletter, where) -> None:
    folder = newsletter.parent
    victim = folder.parent / "victim" / "keep.txt"
    victim.parent.mkdir()
    victim.write_text("keep me\n", encoding="utf-8")
    name = "../../victim/keep.txt" if where == "relative" else str(victim)
    edit_json(folder / "site" / ".manifest.json", lambda m: m["files"].append(name))

    result = run(newsletter, "archive", "-j", "1")

    assert victim.read_text(encoding="utf-8") == "keep me\n"
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f'site/.manifest.json: warning: not used: "files" names {json.dumps(name)}, not a '
        "file of the archive; every issue is rendered again\n"
    )
    assert result.stdout.splitlines()[0].startswith("rendered 2 issues, 0 unchanged;")
    # The manifest written by this build is sound again: the next build is quiet.
    again = run(newsletter, "archive", "-j", "1")
    assert again.exit_code == 0 and again.stderr == ""
    assert again.stdout.splitlines()[0] == (
        "rendered 0 issues, 2 unchanged; 0 files written, 8 unchanged"
    )


def test_manifest_issue_entry_naming_other_files_removes_nothing(newsletter) -> None:
    folder = newsletter.parent
    victim = folder / "notes.txt"  # inside the newsletter folder, outside the site
    victim.write_text("mine\n", encoding="utf-8")
    (folder / "issues" / "2024-11.rst").unlink()  # its files would be removed now

    def change(manifest):
        manifest["issues"]["issues/2024-11.rst"]["files"].append("../notes.txt")

    edit_json(folder / "site" / ".manifest.json", change)
    result = run(newsletter, "archive", "-j", "1")
    assert victim.read_text(encoding="utf-8") == "mine\n"
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        'site/.manifest.json: warning: not used: "issues" entry "issues/2024-11.rst" names '
        "files that are not its pages; every issue is rendered again\n"
    )


def test_manifest_that_is_not_json_is_rebuilt(newsletter) -> None:
    site = newsletter.parent / "site"
    (site / ".manifest.json").write_bytes(b'{"format": 2, "files": [')
    result = run(newsletter, "archive", "-j", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "site/.manifest.json: warning: not used: not valid JSON; every issue is rendered again\n"
    )
    assert json.loads((site / ".manifest.json").read_bytes())["format"] == 2


# --- a tampered cache -------------------------------------------------------------------


def test_cached_record_with_raw_html_is_not_used(newsletter) -> None:
    site = newsletter.parent / "site"
    before = (site / "index.html").read_text(encoding="utf-8")
    # The shape of the first archive format: highlights as ready-made HTML.
    edit_json(site / ".cache" / "2025-05.json", lambda r: r.update(highlights=[HOSTILE[0]]))

    result = run(newsletter, "archive", "-j", "1")

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "site/.cache/2025-05.json: warning: not used: highlights[0] is not a list; "
        "issues/2025-05.rst is rendered again\n"
    )
    assert result.stdout.splitlines()[0].startswith("rendered 1 issue, 1 unchanged;")
    html = (site / "index.html").read_text(encoding="utf-8")
    assert "<script" not in html
    assert html == before  # rebuilt from the issue: the page is as it was


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda r: r["highlights"][0].append(["script", "alert(1)"]),
            "highlights[0][1] is not an inline node",
        ),
        (
            lambda r: r["sections"][0]["entries"][0].update(url="javascript:alert(1)"),
            "sections[0].entries[0].url is not an http(s) or mailto: URL",
        ),
        (
            lambda r: r["intro"][0].append(["a", "x", "javascript:alert(1)"]),
            "intro[0][1] is not an http(s) or mailto: URL",
        ),
        (lambda r: r.update(month="2025-06"), 'month is not "2025-05"'),
        (lambda r: r.update(dir="../../victim"), 'dir is not "2025/05"'),
        (lambda r: r.update(feed_entry="<entry/>"), 'the record has an unknown key "feed_entry"'),
        (
            lambda r: r["sections"][0].update(anchor='x" onclick="y'),
            "sections[0].anchor is not a section anchor",
        ),  # fmt: skip
        (lambda r: r.update(title="a\x1b[31mb"), "the record holds a control character"),
        (lambda r: r.update(title="a\x85b"), "the record holds a control character"),
    ],
)
def test_cached_record_of_another_shape_is_not_used(newsletter, change, reason) -> None:
    site = newsletter.parent / "site"
    before = snapshot(site)
    edit_json(site / ".cache" / "2025-05.json", change)
    result = run(newsletter, "archive", "-j", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"site/.cache/2025-05.json: warning: not used: {reason}; issues/2025-05.rst is "
        "rendered again\n"
    )
    assert snapshot(site) == before  # the issue rendered again: every file as it was


def test_cached_record_with_markup_in_its_text_reaches_no_page_as_markup(newsletter) -> None:
    """A record of the right shape whose text is markup: used, and shown as text."""
    site = newsletter.parent / "site"

    def change(record):
        record["highlights"] = [[["text", text]] for text in HOSTILE]
        record["highlights"].append([["em", HOSTILE[1]], ["a", HOSTILE[0], "https://e.org/"]])
        record["title"] = HOSTILE[1]
        record["sections"][0]["title"] = HOSTILE[0]
        record["sections"][0]["entries"][0]["title"] = HOSTILE[2]
        record["sections"][0]["entries"][0]["summary"] = [[["code", HOSTILE[3]]]]

    edit_json(site / ".cache" / "2025-05.json", change)
    result = run(newsletter, "archive", "-j", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    for name in ("index.html", "links.html"):
        page = assert_inert((site / name).read_text(encoding="utf-8"))
        assert HOSTILE[0] in page.plain(), name
    index = assert_inert((site / "index.html").read_text(encoding="utf-8"))
    for text in HOSTILE:
        assert " ".join(text.split()) in index.plain()
    contents = feed_contents(site)
    for content in contents:
        assert_inert(content)
    assert HOSTILE[3] in Tags(contents[0]).plain()
    script = (site / "search-index.js").read_text(encoding="utf-8")
    index_data = json.loads(script.removeprefix("window.ARCHIVE_INDEX = ").removesuffix(";\n"))
    assert index_data["entries"][0]["title"] == HOSTILE[2]  # data, never code


# --- hostile highlights in the issue itself -----------------------------------------------


def test_hostile_highlights_in_an_issue_reach_no_page_as_markup(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "news"
    config = make_newsletter(folder, months=("2025-05",))
    monkeypatch.chdir(folder)
    issue = folder / "issues" / "2025-05.rst"
    text = issue.read_text(encoding="utf-8")
    start = text.index("\n* ") + 1
    bullets = "".join(f"* {h}\n" for h in HOSTILE) + f"* *{HOSTILE[1]}* ``{HOSTILE[0]}``\n"
    issue.write_text(text[:start] + bullets + text[start:], encoding="utf-8")

    result = run(config, "archive", "-j", "1")

    assert result.exit_code == 0, result.output
    index = assert_inert((folder / "site" / "index.html").read_text(encoding="utf-8"))
    for highlight in HOSTILE:
        assert " ".join(highlight.split()) in index.plain()
    assert ("em", {}) in index.tags and ("code", {}) in index.tags  # the editor's markup stays
    for content in feed_contents(folder / "site"):
        page = assert_inert(content)
        assert HOSTILE[0] in page.plain()


# --- planted symbolic links ---------------------------------------------------------------


def test_a_link_planted_in_the_site_is_not_written_through(newsletter) -> None:
    folder = newsletter.parent
    site = folder / "site"
    outside = folder.parent / "outside"
    outside.mkdir()
    shutil.rmtree(site / "2025")
    (site / "2025").symlink_to(outside, target_is_directory=True)

    result = run(newsletter, "archive", "-j", "1")

    assert list(outside.iterdir()) == []
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: site/2025: a symbolic link; composer writes nothing through a link in its "
        "output folder: remove it and run again"
    )


def test_a_link_planted_for_a_page_is_not_written_through(newsletter) -> None:
    folder = newsletter.parent
    site = folder / "site"
    victim = folder.parent / "victim.html"
    victim.write_text("mine\n", encoding="utf-8")
    (site / "index.html").unlink()
    (site / "index.html").symlink_to(victim)

    result = run(newsletter, "archive", "-j", "1")

    assert victim.read_text(encoding="utf-8") == "mine\n"
    assert result.exit_code == 1
    assert result.stderr == (
        "error: site/index.html: a symbolic link; composer writes nothing through a link in "
        "its output folder: remove it and run again\n"
    )


def test_a_link_planted_in_a_folder_a_removal_walks_removes_nothing(newsletter) -> None:
    folder = newsletter.parent
    site = folder / "site"
    outside = folder.parent / "outside"
    shutil.move(site / "2024", outside)  # the files the removal would delete, elsewhere
    (site / "2024").symlink_to(outside, target_is_directory=True)
    (folder / "issues" / "2024-11.rst").unlink()

    result = run(newsletter, "archive", "-j", "1")

    assert sorted(p.name for p in (outside / "11").iterdir()) == [
        "email.eml",
        "email.txt",
        "index.html",
    ]
    assert result.exit_code == 1
    assert result.stderr == (
        "error: site/2024: a symbolic link; composer writes nothing through a link in its "
        "output folder: remove it and run again\n"
    )


@pytest.mark.parametrize("planted", ["folder", "file"])
def test_build_writes_nothing_through_a_planted_link(tmp_path, monkeypatch, planted) -> None:
    folder = tmp_path / "news"
    config = make_newsletter(folder, months=("2025-05",))
    monkeypatch.chdir(folder)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n", encoding="utf-8")
    (folder / "build").mkdir()
    if planted == "folder":
        (folder / "build" / "2025-05").symlink_to(outside, target_is_directory=True)
        where = "build/2025-05"
    else:
        (folder / "build" / "2025-05").mkdir()
        (folder / "build" / "2025-05" / "email.html").symlink_to(outside / "keep.txt")
        where = "build/2025-05/email.html"

    result = run(config, "build", "issues/2025-05.rst")

    assert snapshot(outside) == {"keep.txt": b"mine\n"}
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"error: {where}: a symbolic link; composer writes nothing through a link in its "
        "output folder: remove it and run again"
    )


def test_build_into_a_clean_folder_still_writes_every_file(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "news"
    config = make_newsletter(folder, months=("2025-05",))
    monkeypatch.chdir(folder)
    result = run(config, "build", "issues/2025-05.rst")
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(folder / "build" / "2025-05")) == [
        "email.eml",
        "email.html",
        "email.txt",
    ]


# --- an issue that cannot be rendered -----------------------------------------------------


def break_june(folder: Path) -> None:
    """The newsletter's own email template: the built-in one, except that it writes an
    unclosed MJML document for the June issue (MJML rejects it, as it rejected control
    characters in text before check learned to report them)."""
    own = folder / "templates" / "email"
    shutil.copytree(ROOT / "templates" / "email", own)
    (own / "email.mjml.j2").rename(own / "_builtin.mjml.j2")
    (own / "email.mjml.j2").write_text(
        '{% if "June" in subject %}<mjml><mj-body><mj-section>'
        '{% else %}{% include "_builtin.mjml.j2" %}{% endif %}\n',
        encoding="utf-8",
    )


JUNE_FAILED = (
    "issues/2025-06.rst:1:1: warning: not archived: it could not be rendered (the email "
    "template produced invalid MJML: unexpected end of stream in root template) "
    "[render-failed]"
)


@pytest.mark.parametrize("jobs", ["1", "2"])  # in this process; a worker beside it
def test_an_issue_that_cannot_be_rendered_is_skipped(tmp_path, monkeypatch, jobs) -> None:
    folder = tmp_path / "news"
    config = make_newsletter(folder)
    monkeypatch.chdir(folder)
    add_june(folder)
    break_june(folder)

    result = run(config, "archive", "-j", jobs)

    assert result.exit_code == 1
    assert result.stderr == (
        f"{JUNE_FAILED}\nerror: 1 issue file not archived: issues/2025-06.rst\n"
    )
    assert result.stdout.splitlines()[0] == (
        "rendered 2 issues, 0 unchanged; 16 files written, 0 unchanged"
    )
    site = folder / "site"
    assert not (site / "2025" / "06").exists()
    assert (site / "2025" / "05" / "index.html").is_file()
    assert "June, 2025" not in (site / "index.html").read_text(encoding="utf-8")
    manifest = json.loads((site / ".manifest.json").read_bytes())
    assert sorted(manifest["issues"]) == ["issues/2024-11.rst", "issues/2025-05.rst"]


def test_many_issues_one_cannot_be_rendered_in_a_pool(tmp_path, monkeypatch) -> None:
    folder = tmp_path / "news"
    config = make_newsletter(folder)
    monkeypatch.chdir(folder)
    june = add_june(folder)
    for month, name in (("2025-07", "July"), ("2025-08", "August")):
        text = june.read_text(encoding="utf-8").replace("June", name, 1)
        (folder / "issues" / f"{month}.rst").write_text(text, encoding="utf-8")
    break_june(folder)
    result = run(config, "archive", "-j", "2")
    assert result.exit_code == 1
    assert result.stderr == (
        f"{JUNE_FAILED}\nerror: 1 issue file not archived: issues/2025-06.rst\n"
    )
    assert result.stdout.splitlines()[0].startswith("rendered 4 issues, 0 unchanged;")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_archived_issue_that_cannot_be_rendered_keeps_its_copy(
    tmp_path, monkeypatch, jobs
) -> None:
    folder = tmp_path / "news"
    config = make_newsletter(folder)
    monkeypatch.chdir(folder)
    add_june(folder)
    assert run(config, "archive", "-j", jobs).exit_code == 0
    site = folder / "site"
    june_page = (site / "2025" / "06" / "index.html").read_bytes()
    break_june(folder)  # every issue is rendered again (the templates changed)

    result = run(config, "archive", "-j", jobs)

    assert result.exit_code == 1
    assert result.stderr == (
        "issues/2025-06.rst:1:1: warning: not rebuilt: it could not be rendered (the email "
        "template produced invalid MJML: unexpected end of stream in root template); the "
        "archive keeps its copy from the last build [render-failed]\n"
        "error: 1 issue file not archived: issues/2025-06.rst\n"
    )
    assert (site / "2025" / "06" / "index.html").read_bytes() == june_page
    assert "June, 2025" in (site / "index.html").read_text(encoding="utf-8")


# --- composer.safefiles, the shared helper ------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "message"),
    [
        ("../x.txt", "'../x.txt': a path outside the folder"),
        ("a/../../x.txt", "'a/../../x.txt': a path outside the folder"),
        ("/tmp/x.txt", "'/tmp/x.txt': an absolute path, outside the folder"),
        ("a//x.txt", "'a//x.txt': a path outside the folder"),
        ("a/./x.txt", "'a/./x.txt': a path outside the folder"),
        ("a\\..\\x.txt", "'a\\\\..\\\\x.txt': not a plain file name"),
        ("x\n.txt", "'x\\n.txt': not a plain file name"),
        ("", "'': not a file name"),
    ],
)
def test_safefiles_refuses_a_path_that_could_leave_the_folder(tmp_path, rel, message) -> None:
    from composer.safefiles import UnsafePath, read_file, remove_file, write_file

    root = tmp_path / "out"
    for call in (lambda: write_file(root, rel, b"x"), lambda: read_file(root, rel)):
        with pytest.raises(UnsafePath) as refused:
            call()
        assert str(refused.value) == message
    with pytest.raises(UnsafePath):
        remove_file(root, rel)
    assert list(tmp_path.iterdir()) == []  # refused before anything was made


def test_safefiles_removes_a_planted_link_not_its_target(tmp_path) -> None:
    from composer.safefiles import remove_file

    root = tmp_path / "out"
    (root / "a").mkdir(parents=True)
    target = tmp_path / "keep.txt"
    target.write_text("mine\n", encoding="utf-8")
    (root / "a" / "x.txt").symlink_to(target)
    assert remove_file(root, "a/x.txt") is True
    assert target.read_text(encoding="utf-8") == "mine\n"
    assert not (root / "a").exists()  # its folder, now empty, too
    assert root.is_dir()


def test_safefiles_reads_no_fifo_and_nothing_over_its_limit(tmp_path) -> None:
    from composer.safefiles import UnsafePath, read_file

    root = tmp_path / "out"
    root.mkdir()
    os.mkfifo(root / "pipe")  # opening it for reading would block forever
    with pytest.raises(UnsafePath) as refused:
        read_file(root, "pipe")
    assert str(refused.value) == f"{root.as_posix()}/pipe: not a regular file"
    (root / "big").write_bytes(b"x" * 101)
    with pytest.raises(UnsafePath) as refused:
        read_file(root, "big", limit=100)
    assert str(refused.value) == (
        f"{root.as_posix()}/big: 101 bytes, over the 100 a file of this kind may have"
    )
    assert read_file(root, "big", limit=101) == b"x" * 101


def test_safefiles_keeps_a_file_that_holds_the_same_bytes(tmp_path) -> None:
    from composer.safefiles import write_file

    root = tmp_path / "out"
    assert write_file(root, "a/b.txt", [b"one ", b"two"], keep_same=True) is True
    before = (root / "a" / "b.txt").stat().st_mtime_ns
    os.utime(root / "a" / "b.txt", ns=(before - 10**9, before - 10**9))
    assert write_file(root, "a/b.txt", iter([b"one two"]), keep_same=True) is False
    assert (root / "a" / "b.txt").stat().st_mtime_ns == before - 10**9
    assert write_file(root, "a/b.txt", [b"one three"], keep_same=True) is True
    assert (root / "a" / "b.txt").read_bytes() == b"one three"
    assert sorted(p.name for p in (root / "a").iterdir()) == ["b.txt"]  # no temp left


def test_a_manifest_that_is_a_link_is_neither_read_nor_written_through(newsletter) -> None:
    folder = newsletter.parent
    site = folder / "site"
    victim = folder.parent / "victim.json"
    victim.write_bytes((site / ".manifest.json").read_bytes())
    (site / ".manifest.json").unlink()
    (site / ".manifest.json").symlink_to(victim)
    before = victim.read_bytes()

    result = run(newsletter, "archive", "-j", "1")

    assert victim.read_bytes() == before
    assert result.exit_code == 1
    link = (
        "a symbolic link; composer writes nothing through a link in its output folder: "
        "remove it and run again"
    )
    assert result.stderr == (
        f"site/.manifest.json: warning: not used: {link}; every issue is rendered again\n"
        f"error: site/.manifest.json: {link}\n"
    )
