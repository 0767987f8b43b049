"""The project's own error types.

Everything sn2_det's checks raise on bad input (a config, a dataset, a checkpoint)
derives from :class:`SN2DetError`, so that the tools can tell a check that failed
(printed as one line, :mod:`sn2_det.utils.cli`) from a defect (its traceback kept).
The subclasses also derive from ValueError, which callers caught before.
"""


class SN2DetError(Exception):
    """Base of the errors sn2_det's checks raise on bad input."""


class ConfigError(SN2DetError, ValueError):
    """A config that cannot give a correct run, e.g. a head's ``num_classes`` that
    disagrees with its dataset's classes."""
