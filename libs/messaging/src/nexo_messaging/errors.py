"""Errors of the messaging layer."""

from __future__ import annotations


class MessagingError(Exception):
    """Base class of nexo_messaging errors."""


class PermanentError(MessagingError):
    """Raised by a handler for a rule violation that retrying cannot fix: the event goes to the
    DLQ at once instead of being retried."""


class TransportUnavailable(MessagingError):
    """The broker cannot be reached (or the memory broker's fault switch is on)."""


class CommitFailed(MessagingError):
    """An offset commit was refused (partition no longer assigned / group rebalanced)."""


class PublishTimeout(MessagingError):
    """A broker call did not finish within its time bound."""
