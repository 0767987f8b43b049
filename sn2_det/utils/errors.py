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


class AnnotationError(SN2DetError, ValueError):
    """An annotation file that cannot give correct boxes and labels, e.g. duplicate
    image ids, or categories that match none of the dataset's classes."""


class EvaluatorMismatchError(SN2DetError, ValueError):
    """An evaluator that does not fit the dataset it scores, e.g. a COCO metric whose
    annotation file is not the dataset's."""


class UnreadableImagesError(SN2DetError, RuntimeError):
    """Too many images of a run could not be read (or none at all)."""
