"""What the dispatch tests share: a newsletter folder with N subscribers, the CLI run in
process or as a real subprocess, the last dispatch's counts, and who an SMTP test server
delivered to. One copy here, so the dispatch, hostile-dispatch and worker tests build the
same project and the same command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml
from click.testing import CliRunner

from composer.cli import main
from composer.dispatch.records import DispatchRecords
from composer.subscribers import open_store
from tests.servers.smtp import SMTPTestServer

ROOT = Path(__file__).resolve().parents[1]
ISSUE = "issues/2025-05.rst"
DB = ("subscribers", "subscribers.db")
SECRET = {"NEWSLETTER_SECRET": "test-secret-for-dispatch"}


def make_project(tmp_path: Path, recipients: int, **settings_extra) -> Path:
    """A newsletter folder: the seeds, the templates, settings, and N subscribers."""
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    settings = yaml.safe_load((ROOT / "newsletter.yaml").read_text())
    settings.update(settings_extra)
    (tmp_path / "newsletter.yaml").write_text(yaml.safe_dump(settings))
    with open_store(tmp_path / "subscribers" / "subscribers.db") as store:
        for i in range(recipients):
            store.add(f"reader{i:04d}@example.com", name=f"Reader {i}")
    return tmp_path


def run(project: Path, *args: str, **kwargs):
    env = {**os.environ, **SECRET}
    return CliRunner(env=env).invoke(
        main,
        ["--config", str(project / "newsletter.yaml"), *args],
        catch_exceptions=False,
        **kwargs,
    )


def composer_process(
    project: Path, *args: str, env: dict | None = None, stderr: int = subprocess.STDOUT
) -> subprocess.Popen:
    """`python -m composer --config PROJECT/newsletter.yaml ARGS` as a real process (so it
    can be killed), run in the project folder with this checkout importable."""
    return subprocess.Popen(
        [sys.executable, "-m", "composer", "--config", str(project / "newsletter.yaml"), *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=project,
    )


def dispatch_process(project: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    """`dispatch ISSUE --yes EXTRA` as a real process, with the secret set; output and
    errors on one pipe."""
    return composer_process(
        project, "dispatch", str(project / ISSUE), "--yes", *extra, env={**SECRET, **(env or {})}
    )


def counts(project: Path) -> dict[str, int]:
    with open_store(project / "subscribers" / "subscribers.db") as store:
        records = DispatchRecords(store)
        return records.counts(records.all()[-1])


def delivered_to(server: SMTPTestServer) -> Counter:
    return Counter(addr.lower() for message in server.received for addr in message.rcpt_tos)
