"""`newsletter preview`: a local page that shows an issue as subscribers will see it and
follows the editor's saves.

Standard library only: `http.server` on 127.0.0.1, answering only requests whose Host is
127.0.0.1, localhost or [::1] with its port (no DNS rebinding). The page asks `/state.json` about
once a second; the server compares the file's modification time and size with the last
render and, when they changed, re-reads, re-checks and re-renders it. The email itself is
served to sandboxed iframes that may run no script.
"""

from __future__ import annotations

import html
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

POLL_MS = 800
DESKTOP_PX = 680  # the 600px email plus the page around it
PHONE_PX = 375
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class Preview:
    """The rendered state of one file, refreshed when the file changes."""

    def __init__(self, path: Path | str, settings) -> None:
        self.path = Path(path)
        self.settings = settings
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self.version = 0
        self.state: dict = {}
        self.html = ""
        self.text = ""

    def _file_stamp(self) -> tuple[int, int]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (-1, -1)
        return (st.st_mtime_ns, st.st_size)

    def refresh(self) -> dict:
        """Re-render if the file changed since the last render; the current state."""
        with self._lock:
            stamp = self._file_stamp()
            if stamp != self._stamp:
                self._stamp = stamp
                self.version += 1
                self._render()
            return self.state

    def _render(self) -> None:
        from composer.render.size import kb
        from composer.render.stage import check_and_render

        state: dict = {"version": self.version, "path": str(self.path), "problem": ""}
        try:
            if self._stamp == (-1, -1):  # renamed or deleted: nothing to render
                raise FileNotFoundError("the file is gone (renamed or deleted?)")
            staged = check_and_render(self.path, self.settings, render_on_errors=True)
        except Exception as exc:  # noqa: BLE001  (shown on the page; the server stays up)
            state.update(diagnostics=[], subject="", preheader="", html_size="", text_size="")
            state["problem"] = f"cannot render {self.path}: {type(exc).__name__}: {exc}"
            self.html = f"<!doctype html><p>{html.escape(state['problem'])}</p>"
            self.text = state["problem"]
            self.state = state
            return
        rendered = staged.rendered
        state["diagnostics"] = [{**d.as_json(), "text": str(d)} for d in staged.diagnostics]
        state["errors"] = len(staged.errors)
        state["subject"] = rendered.subject if rendered else ""
        state["preheader"] = rendered.preheader if rendered else ""
        state["html_size"] = kb(rendered.html_size) if rendered else ""
        state["text_size"] = kb(rendered.text_size) if rendered else ""
        self.html = rendered.html if rendered else ""
        self.text = rendered.text if rendered else ""
        self.state = state


class PreviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, path: Path | str, settings, host: str = "127.0.0.1", port: int = 8025):
        self.preview = Preview(path, settings)
        self.preview.refresh()  # render once before serving: errors show at start
        super().__init__((host, port), _Handler)

    @property
    def shown_hosts(self) -> tuple[str, ...]:
        port = self.server_address[1]
        return tuple(f"{name}:{port}" for name in LOOPBACK_NAMES)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Host header values answered: loopback names with this server's port (without a
        port only when it is 80, as a browser then sends it)."""
        names = set(self.shown_hosts)
        if self.server_address[1] == 80:
            names.update(LOOPBACK_NAMES)
        return frozenset(names)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: PreviewServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass  # quiet: the terminal is the editor's

    def do_GET(self) -> None:  # noqa: N802
        refusal = self._host_refusal()
        if refusal:
            self._send(*refusal)
            return
        preview = self.server.preview
        route = self.path.split("?", 1)[0]
        state = preview.refresh()
        if route == "/":
            self._send(_page(state, preview.text), "text/html; charset=utf-8")
        elif route == "/email.html":
            self._send(preview.html, "text/html; charset=utf-8")
        elif route == "/email.txt":
            self._send(preview.text, "text/plain; charset=utf-8")
        elif route == "/state.json":
            self._send(json.dumps({**state, "text": preview.text}), "application/json")
        else:
            self._send("not found", "text/plain; charset=utf-8", HTTPStatus.NOT_FOUND)

    def _host_refusal(self) -> tuple[str, str, HTTPStatus] | None:
        """Drafts are private: a page on another site can point its own name at 127.0.0.1
        (DNS rebinding) and read what this server answers, so only requests that name this
        server by a loopback address and its port are answered."""
        host = (self.headers.get("Host") or "").strip().lower()
        if host in self.server.allowed_hosts:
            return None
        where = " or ".join(f"http://{h}/" for h in self.server.shown_hosts)
        text = "text/plain; charset=utf-8"
        if not host:
            return (f"a Host header is required; open {where}\n", text, HTTPStatus.BAD_REQUEST)
        return (
            f"this preview answers only requests for {where}\n",
            text,
            HTTPStatus.MISDIRECTED_REQUEST,
        )

    def _send(self, body: str, content_type: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


def _diagnostics_html(state: dict) -> str:
    if state.get("problem"):
        return f'<li class="error">{html.escape(state["problem"])}</li>'
    items = state.get("diagnostics") or []
    if not items:
        return '<li class="ok">No problems found.</li>'
    return "".join(
        f'<li class="{html.escape(d["severity"])}">{html.escape(d["text"])}</li>' for d in items
    )


def _page(state: dict, text: str) -> str:
    e = html.escape
    version = state.get("version", 0)
    return _PAGE.format(
        path=e(state.get("path", "")),
        subject=e(state.get("subject", "")),
        preheader=e(state.get("preheader", "")),
        html_size=e(state.get("html_size", "")),
        text_size=e(state.get("text_size", "")),
        diagnostics=_diagnostics_html(state),
        text=e(text),
        version=version,
        desktop=DESKTOP_PX,
        phone=PHONE_PX,
        poll=POLL_MS,
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Preview: {path}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 16px; color: #1d232b; background: #fafbfc; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }} h2 {{ font-size: 15px; margin: 16px 0 6px; }}
.meta {{ color: #4a5561; margin: 0 0 8px; }}
ul.diag {{ margin: 0; padding-left: 18px; font-family: ui-monospace, monospace; }}
li.error {{ color: #b00020; }} li.warning {{ color: #8a5300; }} li.ok {{ color: #1a7f37; }}
.frames {{ display: flex; gap: 16px; align-items: flex-start; overflow-x: auto; }}
.frames figure {{ margin: 0; }} figcaption {{ color: #4a5561; margin-bottom: 4px; }}
iframe {{ border: 1px solid #d5dbe3; height: 80vh; background: #fff; }}
pre {{ background: #fff; border: 1px solid #d5dbe3; padding: 12px; max-width: 80ch;
       white-space: pre; overflow-x: auto; }}
</style></head>
<body>
<h1>{path}</h1>
<p class="meta">Subject: <b id="subject">{subject}</b> &middot; Preheader:
 <span id="preheader">{preheader}</span> &middot; HTML <span id="html_size">{html_size}</span>,
 text <span id="text_size">{text_size}</span> &middot; <span id="status">render {version}</span></p>
<h2>Diagnostics</h2>
<ul class="diag" id="diagnostics">{diagnostics}</ul>
<div class="frames">
<figure><figcaption>Desktop ({desktop}px)</figcaption>
<iframe id="desktop" title="Desktop" width="{desktop}"
 sandbox="allow-popups allow-popups-to-escape-sandbox"
 src="/email.html?v={version}"></iframe></figure>
<figure><figcaption>Phone ({phone}px)</figcaption>
<iframe id="phone" title="Phone" width="{phone}"
 sandbox="allow-popups allow-popups-to-escape-sandbox"
 src="/email.html?v={version}"></iframe></figure>
</div>
<h2>Plain text</h2>
<pre id="text">{text}</pre>
<script>
let version = {version};
const $ = (id) => document.getElementById(id);
function esc(s) {{
  const d = document.createElement("div"); d.textContent = s; return d.innerHTML;
}}
async function poll() {{
  try {{
    const r = await fetch("/state.json", {{cache: "no-store"}});
    const s = await r.json();
    if (s.version !== version) {{
      version = s.version;
      for (const id of ["desktop", "phone"]) $(id).src = "/email.html?v=" + version;
      for (const k of ["subject", "preheader", "html_size", "text_size"]) $(k).textContent = s[k];
      $("text").textContent = s.text;
      const items = s.problem ? [{{severity: "error", text: s.problem}}] : s.diagnostics;
      $("diagnostics").innerHTML = items.length
        ? items.map(d => `<li class="${{esc(d.severity)}}">${{esc(d.text)}}</li>`).join("")
        : '<li class="ok">No problems found.</li>';
    }}
    $("status").textContent = "render " + version;
  }} catch (e) {{
    $("status").textContent = "preview server stopped";
  }}
  setTimeout(poll, {poll});
}}
setTimeout(poll, {poll});
</script>
</body></html>
"""
