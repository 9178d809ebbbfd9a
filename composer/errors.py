"""Domain errors. The library raises these; only the CLI turns them into messages
and exit codes."""

from __future__ import annotations


class ComposerError(Exception):
    """Base of every error a user can act on. `str(err)` is the message to show."""

    exit_code = 1


class SettingsError(ComposerError):
    """newsletter.yaml is missing, unreadable or holds a bad value."""

    exit_code = 2


class UnsupportedFormat(ComposerError):
    """No reader or writer is registered for a file's extension."""

    exit_code = 2


class IssueHasErrors(ComposerError):
    """An issue that `check` finds errors in cannot be built, converted or sent."""

    def __init__(self, path: str, diagnostics: list) -> None:
        self.path = path
        self.diagnostics = diagnostics
        self.errors = [d for d in diagnostics if str(d.severity) == "error"]
        count = len(self.errors)
        listing = "".join(f"\n{d}" for d in self.errors)
        super().__init__(
            f"{path} has {count} error{'s' if count != 1 else ''}; fix "
            f"{'them' if count != 1 else 'it'} first (see `newsletter check`):{listing}"
        )


class FileExists(ComposerError):
    """A command refused to overwrite a file."""
