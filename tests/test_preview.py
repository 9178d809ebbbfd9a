"""`newsletter preview`: a real server on 127.0.0.1 that follows the file's saves."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from composer.preview import PreviewServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def issue_file(tmp_path) -> Path:
    path = tmp_path / "2025-05.rst"
    shutil.copy(ROOT / "issues" / "2025-05.rst", path)
    return path


@pytest.fixture
def server(issue_file, settings):
    srv = PreviewServer(issue_file, settings, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def get(server, route: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(server.url.rstrip("/") + route, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def state(server) -> dict:
    return json.loads(get(server, "/state.json")[2])


def save(path: Path, text: str) -> None:
    """Write like an editor, and make sure the modification time moves."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_listens_on_loopback_only(server) -> None:
    assert server.server_address[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")


def test_page_shows_both_widths_text_and_diagnostics(server, issue_file) -> None:
    status, content_type, page = get(server, "/")
    assert status == 200 and content_type == "text/html; charset=utf-8"
    assert '<iframe id="desktop" title="Desktop" width="680"' in page
    assert '<iframe id="phone" title="Phone" width="375"' in page
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page  # no scripts
    assert 'Subject: <b id="subject">The CoVar Zeitgeist: May, 2025</b>' in page
    assert "There is a lot of interesting research this month. Featuring:" in page  # text
    assert "[tracking-param]</li>" in page  # the seed's warnings


def test_serves_the_rendered_bodies(server, settings, issue_file) -> None:
    from composer.readers import read_issue
    from composer.render import render

    rendered = render(read_issue(issue_file).issue, settings)
    assert get(server, "/email.html")[2] == rendered.html
    status, content_type, text = get(server, "/email.txt")
    assert content_type == "text/plain; charset=utf-8" and text == rendered.text


def test_rerenders_when_the_file_changes(server, issue_file) -> None:
    first = state(server)
    assert state(server)["version"] == first["version"]  # nothing changed, nothing redone
    original = issue_file.read_text(encoding="utf-8")
    save(issue_file, original.replace("Develops a class of sparse", "Builds a family of sparse"))
    second = state(server)
    assert second["version"] == first["version"] + 1
    assert "Builds a family of sparse" in get(server, "/email.html")[2]
    assert "Builds a family of sparse" in second["text"]


def test_shows_new_errors_after_a_bad_save_and_recovers(server, issue_file) -> None:
    original = issue_file.read_text(encoding="utf-8")
    broken = original.replace(
        "`Generalized Neighborhood Attention: Multi-dimensional Sparse Attention at the Speed "
        "of Light <https://arxiv.org/pdf/2504.16922>`_\n    Develops",
        "Generalized Neighborhood Attention without a link\n    Develops",
        1,
    )
    assert broken != original
    save(issue_file, broken)
    s = state(server)
    assert s["errors"] >= 1
    assert any(d["code"] == "entry-no-url" for d in s["diagnostics"])
    assert "entry-no-url" in get(server, "/")[2]
    save(issue_file, original)
    assert state(server)["errors"] == 0


def test_a_vanished_file_is_reported_not_fatal(server, issue_file) -> None:
    issue_file.unlink()
    s = state(server)
    assert s["problem"].startswith(f"cannot render {issue_file}: FileNotFoundError")
    assert get(server, "/")[0] == 200


def test_unknown_route_is_404(server) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        get(server, "/nope")
    assert info.value.code == 404


def test_cli_preview_prints_where_it_serves(monkeypatch) -> None:
    """The command itself: started as a process, it prints its URL and serves."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "composer", "preview", "issues/2025-05.rst", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Previewing issues/2025-05.rst at http://127.0.0.1:")
        assert line.rstrip().endswith("/ (Ctrl-C to stop)")
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url + "state.json", timeout=5) as response:
                    assert json.loads(response.read())["errors"] == 0
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def raw_get(port: int, host: str | None, route: str = "/state.json") -> tuple[str, str]:
    """One HTTP/1.1 request over a plain socket, Host header as given (None: no Host)."""
    import socket

    request = f"GET {route} HTTP/1.1\r\n"
    if host is not None:
        request += f"Host: {host}\r\n"
    request += "Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode("ascii"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.decode("utf-8").partition("\r\n\r\n")
    return head.split("\r\n", 1)[0], body


def _refused(port: int) -> str:
    return (
        f"this preview answers only requests for http://127.0.0.1:{port}/ or "
        f"http://localhost:{port}/ or http://[::1]:{port}/\n"
    )


def test_another_host_name_is_refused_dns_rebinding(server) -> None:
    """A page on evil.example whose name now points at 127.0.0.1 must not read drafts."""
    port = server.server_address[1]
    for host in (
        "evil.example",
        f"evil.example:{port}",
        f"127.0.0.1.evil.example:{port}",
        "127.0.0.1",
        f"127.0.0.1:{port + 1}",
        f"localhost.:{port}",
    ):
        status, body = raw_get(port, host)
        assert (status, body) == ("HTTP/1.0 421 Misdirected Request", _refused(port)), host
        assert "Zeitgeist" not in body
    status, body = raw_get(port, None)
    assert status == "HTTP/1.0 400 Bad Request"
    assert body == (
        f"a Host header is required; open http://127.0.0.1:{port}/ or http://localhost:{port}/ "
        f"or http://[::1]:{port}/\n"
    )


def test_loopback_host_names_with_the_port_are_served(server) -> None:
    port = server.server_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}"):
        status, body = raw_get(port, host)
        assert status == "HTTP/1.0 200 OK", host
        assert json.loads(body)["errors"] == 0


def test_the_running_cli_preview_refuses_a_foreign_host() -> None:
    """The real `newsletter preview` process, asked with `Host: evil.example`."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "composer", "preview", "issues/2025-05.rst", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        port = int(line.split(" at http://127.0.0.1:", 1)[1].split("/", 1)[0])
        assert raw_get(port, "evil.example") == ("HTTP/1.0 421 Misdirected Request", _refused(port))
        status, body = raw_get(port, f"localhost:{port}", "/email.html")
        assert status == "HTTP/1.0 200 OK" and "Zeitgeist" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)
