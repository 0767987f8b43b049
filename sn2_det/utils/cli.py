"""The top level of the tools: a failed check is one line, a defect a traceback.

``run_tool(main)`` (each ``tools/*.py`` ends with it) runs ``main`` on the command
line's arguments. The project's own errors (:class:`sn2_det.utils.errors.SN2DetError`)
and the FileNotFoundError / ValueError that sn2_det's or the tool's own code raises
(its checks: the raising frame is in the sn2_det package or next to the tool) print
``error: <message>`` on one line to stderr and exit with status 2, as argparse does
for bad arguments.
Anything else, and everything with ``--debug`` on the command line or
``SN2_DET_DEBUG=1`` in the environment, keeps its traceback.
"""
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import SN2DetError

DEBUG_FLAG = '--debug'
DEBUG_ENV = 'SN2_DET_DEBUG'
CHECK_TYPES = (FileNotFoundError, ValueError)
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _raised_in(err: BaseException) -> Optional[Path]:
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename).resolve() if tb is not None else None


def is_check_failure(err: BaseException, tool_dir: Optional[Path] = None) -> bool:
    """Whether ``err`` is one of the project's checks failing (see module docstring)."""
    if isinstance(err, SN2DetError):
        return True
    where = _raised_in(err) if isinstance(err, CHECK_TYPES) else None
    ours = [PACKAGE_DIR] + ([tool_dir.resolve()] if tool_dir else [])
    return where is not None and any(d in where.parents for d in ours)


def one_line(err: BaseException) -> str:
    return ' '.join(str(err).split()) or type(err).__name__


def run_tool(main: Callable, argv: Optional[Sequence[str]] = None):
    """``main(argv)`` with the project's errors as ``error: ...`` and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0')
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        return main(argv)
    except Exception as err:
        tool_dir = Path(main.__code__.co_filename).parent if hasattr(main, '__code__') \
            else None
        if debug or not is_check_failure(err, tool_dir):
            raise
        print(f'error: {one_line(err)}', file=sys.stderr)
        sys.exit(2)
