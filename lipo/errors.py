"""Errors a user can fix: the launcher prints them as one line, without a traceback."""


class LipoError(Exception):
    """Base class: the message names the file, row or flag at fault."""


class DataError(LipoError):
    """A data, pool or split file that cannot be used as it is."""


class ConfigError(LipoError):
    """An unknown name or conflicting flags."""


class TrainingDiverged(LipoError):
    """The loss became NaN or infinite; the trial stops and records why."""


class ArtifactError(LipoError):
    """Artifacts could not be written (a full disk, an unwritable artifact store)."""


class TrackingUnreachable(LipoError):
    """The MLflow tracking server does not answer."""


class TrialPruned(Exception):
    """The search's pruner stopped a trial after an epoch: an outcome, not a fault."""
