"""``RuntimeOptions``: where and how a program runs (the seed's options dataclass)."""

from __future__ import annotations

import dataclasses
import logging
import re

from qruntime.exceptions import IBMQInputValueError

#: The seed's image reference format, ``name:tag``.
IMAGE_PATTERN = re.compile(r"[a-zA-Z0-9]+([/.\-_][a-zA-Z0-9]+)*:[a-zA-Z0-9]+([.\-_][a-zA-Z0-9]+)*$")


@dataclasses.dataclass
class RuntimeOptions:
    """Options of one run.

    Attributes:
        backend_name: the backend to run on (sent as ``backend``); required.
        image: the seed's container image ``name:tag`` (accepted, validated, sent as ``runtime``).
        log_level: the program's log level (``DEBUG`` … ``CRITICAL``); server default WARNING.
        version: a program version to run (default the current one); see
            ``RuntimeService.program_versions``.
        max_execution_time: seconds; may lower, never raise, the program's own limit.
    """

    backend_name: str | None = None
    image: str | None = None
    log_level: str | None = None
    version: str | None = None
    max_execution_time: int | None = None

    def validate(self) -> None:
        """Check the options the way the seed did, with its messages.

        Raises:
            IBMQInputValueError: an option is missing or malformed.
        """
        if self.image and not IMAGE_PATTERN.match(self.image):
            raise IBMQInputValueError('"image" needs to be in form of image_name:tag')
        if not self.backend_name:
            raise IBMQInputValueError('"backend_name" is required field in "options".')
        if self.log_level and not isinstance(logging.getLevelName(self.log_level.upper()), int):
            raise IBMQInputValueError(
                f"{self.log_level} is not a valid log level. The valid log levels are: `DEBUG`, "
                f"`INFO`, `WARNING`, `ERROR`, and `CRITICAL`."
            )
