"""Which process trains a run: a pid, and a token that a later process reusing the pid does not share.

A run records its process when it starts; a store that is opened asks
`alive` of every run still marked running on this host, and marks the ones
whose process is gone as interrupted (Linux /proc; elsewhere the pid alone).
"""

from __future__ import annotations

import os


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """`boot_id:start_ticks` of a live process (Linux /proc), None if it is gone, a zombie, or /proc is absent.

    Two processes that share a pid, one after the other or across a reboot,
    never share this token, so it tells a run's own process from a stranger.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()  # the command name before it may hold spaces and parentheses
    if len(fields) < 20 or fields[0] == b"Z":
        return None
    return f"{_boot_id()}:{fields[19].decode()}"


def alive(pid: int, start: str | None) -> bool:
    """Whether the process that recorded (`pid`, `start`) still runs on this host."""
    if not isinstance(pid, int) or pid <= 1:
        return False  # no training process has such a pid; 0 and -1 would address groups of processes
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # it exists, owned by another user
    except (OSError, OverflowError):
        return False
    if not os.path.isdir("/proc/self"):
        return True  # no /proc: the pid's existence is all there is to go on
    return start is not None and process_start(pid) == start
