"""Orchestrator functions, one per module.

Orchestrator code is replayed: it does no I/O, reads no settings or environment, never looks at
the wall clock and draws no random numbers. Time comes from `context.current_utc_datetime`, waits
from durable timers, and everything else from activities.
"""
