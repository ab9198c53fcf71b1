"""`python -m devhost.guard PARENT_PID COMMAND...`: run COMMAND so that it dies with process PARENT_PID.

Sets Linux's parent-death signal (SIGTERM) on itself and then becomes COMMAND (exec keeps the
setting), so the kernel stops COMMAND however its parent ends, even by SIGKILL. It is a separate
program rather than a `preexec_fn`: running Python between fork and exec in a process with gRPC
threads (devhost's engine) crashes the child.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: python -m devhost.guard PARENT_PID COMMAND...", file=sys.stderr)
        return 2
    parent, command = int(argv[0]), argv[1:]
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the parent's own cleanup is all there is
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the signal was set
        return 1
    os.execvp(command[0], command)
    return 127  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
