"""Commands on issue files: check, convert, new."""

COMMANDS: list = []
