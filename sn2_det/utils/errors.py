"""The project's own error types: one family for every refusal of bad input.

Everything sn2_det's checks raise on bad input (a config, a tool's argument, a data or
model file, a checkpoint) derives from :class:`SN2DetError`; the tools print those as
one line ``error: ...`` with exit status 2 and let every other exception keep its
traceback (:mod:`sn2_det.utils.cli`). Each subclass also derives from the built-in
exception that callers caught before (ValueError, FileNotFoundError, OSError,
TypeError, RuntimeError), so an ``except ValueError`` around a check still works.

The kinds:

- :class:`ConfigError`: a config key or a tool argument whose value cannot give a
  correct run; :class:`UnknownArgumentError` a key the module it configures does not
  have.
- :class:`MissingFileError`: a file or folder named by a config or an argument is not
  there.
- :class:`DataError`: the content of an input file cannot be used (an annotation file,
  an image, a video, an exported model); :class:`UnreadableImageError` one image,
  :class:`MediaError` an input or output of the inference tool,
  :class:`UnreadableDataError` too much of a dataset unreadable to go on.
- :class:`PretrainedWeightsError`: backbone weights that disagree with the config.
- :class:`ExportError`: an export that does not reproduce the PyTorch model
  (:class:`ExportMismatchError`, in any format) or that the converter cannot do
  (:class:`NcnnConversionError`).
- :class:`LaunchError`: a launcher that is not set up (e.g. slurm outside srun).

Checkpoints have :class:`sn2_det.utils.checkpoint.CheckpointError`, of the same family.
"""


class SN2DetError(Exception):
    """Base of the errors sn2_det's checks raise on bad input."""


class ConfigError(SN2DetError, ValueError):
    """A config key or tool argument that cannot give a correct run, e.g. a head's
    ``num_classes`` that disagrees with its dataset's classes."""


class UnknownArgumentError(ConfigError, TypeError):
    """A config key that the module it configures has no argument for."""


class MissingFileError(SN2DetError, FileNotFoundError):
    """A file or folder named by a config or an argument does not exist."""


class DataError(SN2DetError, ValueError):
    """An input file whose content cannot be used: annotations, images, videos,
    exported models."""


class UnreadableImageError(DataError, OSError):
    """An image file that cannot be read or decoded."""


class MediaError(DataError):
    """An input of the inference tool that cannot be read, an output that cannot be
    written, or an option out of its range."""


class UnreadableDataError(SN2DetError, RuntimeError):
    """More of a dataset could not be read than a run accepts."""


class PretrainedWeightsError(ConfigError):
    """A run whose backbone weights and config disagree; raised before training."""


class ExportError(SN2DetError, RuntimeError):
    """An export that fails on the model it is given."""


class ExportMismatchError(ExportError):
    """An exported model's outputs differ from the PyTorch model's (ONNX, ncnn)."""


class NcnnConversionError(ExportError):
    """pnnx failed, or wrote layers that ncnn does not have."""


class LaunchError(SN2DetError, RuntimeError):
    """A distributed launcher that is not set up for the run."""


class AnnotationError(DataError):
    """An annotation file that cannot give correct boxes and labels, e.g. duplicate
    image ids, or categories that match none of the dataset's classes."""


class EvaluatorMismatchError(ConfigError):
    """An evaluator that does not fit the dataset it scores, e.g. a COCO metric whose
    annotation file is not the dataset's."""
