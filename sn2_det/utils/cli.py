"""The top level of the tools: a failed check is one line, a defect a traceback.

``run_tool(main)`` (each ``tools/*.py`` ends with it) runs ``main`` on the command
line's arguments. The project's own errors (:class:`sn2_det.utils.errors.SN2DetError`,
the family every check raises) print ``error: <message>`` on one line to stderr and
exit with status 2, as argparse does for bad arguments. Anything else, and
everything with ``--debug`` on the command line or ``SN2_DET_DEBUG=1`` in the
environment, keeps its traceback.
"""
import os
import sys
from typing import Callable, Optional, Sequence

from .errors import SN2DetError

DEBUG_FLAG = '--debug'
DEBUG_ENV = 'SN2_DET_DEBUG'


def one_line(err: BaseException) -> str:
    return ' '.join(str(err).split()) or type(err).__name__


def run_tool(main: Callable, argv: Optional[Sequence[str]] = None):
    """``main(argv)`` with the project's errors as ``error: ...`` and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, '') not in ('', '0')
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        return main(argv)
    except SN2DetError as err:
        if debug:
            raise
        print(f'error: {one_line(err)}', file=sys.stderr)
        sys.exit(2)
