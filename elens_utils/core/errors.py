"""The one exception users see: a problem with their input, and what to do about it."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ElensError", "first_line", "run_command"]


class ElensError(ValueError):
    """A user-facing error: the message names the problem and the fix.

    The command line prints the message alone (no traceback) and exits with status 2.
    Subclasses ``ValueError`` so generic callers that catch bad values still catch it.
    """


def first_line(err: BaseException, limit: int = 160) -> str:
    """The first line of ``err``'s message (its type's name when it has none), cut to its first
    sentence when longer than ``limit`` characters (torch's dispatcher messages run to kilobytes)."""
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    if len(line) > limit:
        stop = line.find(". ")
        line = line[: stop + 1] if 0 < stop < limit else line[: limit - 3] + "..."
    return line


def _os_error_text(err: OSError) -> str:
    import errno

    where = f" {err.filename}" if getattr(err, "filename", None) else ""
    what = " ".join((err.strerror or str(err) or type(err).__name__).split())  # one line
    fix = {
        errno.ENOSPC: "free some disk space (or point ELENS_CACHE / --out elsewhere) and run again",
        errno.EDQUOT: "free some of your disk quota and run again",
        errno.EACCES: "choose a directory you can write to, or fix its permissions",
        errno.EPERM: "choose a directory you can write to, or fix its permissions",
        errno.EROFS: "the file system is read-only: choose a writable directory (ELENS_CACHE, --out)",
    }.get(err.errno)
    if fix is None:
        return f"{what}{':' + where if where else ''}."
    return f"{what}:{where}. {fix[0].upper()}{fix[1:]}; finished work is kept and a re-run resumes."


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it."""
    import select
    import sys

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), or stdout not a file
        return True


def run_command(body: Callable[[], int | None]) -> int:
    """Run a command-line entry point's ``body`` and turn what it raises into an exit status.

    ``ElensError``: its message as one ``error: ...`` line, status 2. A full disk, a read-only
    or forbidden directory (``OSError``): one ``error:`` line naming the file and the fix,
    status 2. Standard output closed by its reader (``... | head``): stop quietly, status 0.
    Ctrl-C: ``interrupted``, status 130. Anything else is a bug and keeps its traceback.
    """
    import os
    import sys

    try:
        code = int(body() or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except ElensError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError as err:
        if not _stdout_reader_gone():  # another pipe broke (a child process died): an error
            print(f"error: {_os_error_text(err)}", file=sys.stderr)
            return 2
        # The reader of our output went away: send what is still buffered nowhere (else Python
        # reports the broken pipe again at exit) and stop without a message.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        print(f"error: {_os_error_text(err)}", file=sys.stderr)
        return 2
