"""The error types the engine raises for bad input.

Every message says what is wrong and what to do about it; the GUI shows it as it is and the
CLI prints it without a traceback.
"""


class TalkstudioError(Exception):
    """Base class of every error the user can cause and fix."""


class MediaError(TalkstudioError):
    """A media file is missing, corrupt, lacks the needed stream or cannot be decoded/encoded."""


class SubjectError(TalkstudioError):
    """A subject folder is missing parts, malformed, or from an unsupported format version."""


class CheckpointError(TalkstudioError):
    """A model checkpoint is missing, truncated or was trained with another configuration."""


class ConfigError(TalkstudioError, ValueError):
    """A setting is unknown, misspelt, of the wrong type or out of range (also a ValueError)."""


class DeviceError(TalkstudioError):
    """The requested compute device is unknown or not available on this machine."""
