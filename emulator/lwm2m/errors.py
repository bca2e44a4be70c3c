"""The LwM2M agent's own exceptions (the AT layer maps them to its error codes)."""
from __future__ import annotations


class AgentError(Exception):
    """A host request the agent's state does not allow (enable while enabled, ack with no ring ...);
    the AT layer answers it with OPERATION_NOT_ALLOWED."""


class ValueRefused(AgentError):
    """A host-written value the resource cannot take (e.g. a UTC offset that is not whole quarter
    hours); the AT layer answers it with OPERATION_NOT_SUPPORTED."""
