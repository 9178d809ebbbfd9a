"""The convert stage: read -> check -> write in another format -> prove nothing was lost."""

from __future__ import annotations

from pathlib import Path

from composer.errors import ComposerError, FileExists, IssueHasErrors


def convert_issue(
    path: Path, fmt: str, output: Path | None, force: bool = False
) -> tuple[str, Path | None]:
    """Returns the converted text and where it was written (None for standard output)."""
    from composer.check import check_file
    from composer.readers import read_issue
    from composer.writers import writer_for

    result = check_file(path, history=False, render_size=False)
    if result.errors:
        raise IssueHasErrors(str(path), result.diagnostics)
    writer = writer_for(fmt)
    to_stdout = output is not None and str(output) == "-"
    target = None if to_stdout else (output or path.with_suffix(writer.extension))
    if target is not None and target.resolve() == path.resolve():
        raise ComposerError(f"{path} is already {fmt}: pass -o to write a copy elsewhere")
    if target is not None and target.exists() and not force:
        raise FileExists(f"{target} already exists; pass --force to overwrite it")
    text = writer.write(result.issue, str(target or path))
    # Conversion promises equality: check it rather than trust it.
    again = read_issue(target or path.with_suffix(writer.extension), text).issue
    if again != result.issue:
        raise ComposerError(
            f"converting {path} to {fmt} would lose content; nothing written "
            "(please report this with the file)"
        )
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return text, target
