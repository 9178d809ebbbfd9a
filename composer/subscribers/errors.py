"""Errors of the subscriber store; each message says where the problem is and what to do."""

from __future__ import annotations

from composer.errors import ComposerError


class SubscriberError(ComposerError):
    """Base of the subscriber store's errors."""


class InvalidAddress(SubscriberError):
    """An address that email-validator rejects; the message is its own explanation."""

    exit_code = 2

    def __init__(self, address: str, reason: str) -> None:
        self.address, self.reason = address, reason
        super().__init__(f'"{address}": {reason}')


class UnknownSubscriber(SubscriberError):
    """No subscriber has that address (or id, or token)."""


class UnknownList(SubscriberError):
    """A list name that the database does not hold."""

    exit_code = 2


class ImportFileError(SubscriberError):
    """A CSV file that cannot be imported at all (missing, unreadable, no email column)."""

    exit_code = 2


class AlreadySuppressed(SubscriberError):
    """Adding someone who unsubscribed, bounced or complained needs an explicit resubscribe."""


class DatabaseError(SubscriberError):
    """The database file cannot be opened or is newer than this code."""


class DispatchBegunMeanwhile(SubscriberError):
    """Another run created a dispatch of the same issue and list after this one looked:
    creating a second would send the issue twice."""
