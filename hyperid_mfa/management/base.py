"""What the app's management commands share: their version, and one way to refuse arguments.

- ``--version`` prints the app's version (``hyperid_mfa.__version__``), not Django's.
- Every bad argument is a usage error, whoever finds it: an argparse ``type=`` (the
  :class:`ArgumentType` classes below), a check of one option against another
  (:meth:`HyperIDMFACommand.usage_error`), or the recheck of the values that
  ``call_command(name, option=value)`` hands to the command past argparse. From the
  command line that is argparse's answer: the usage line, the reason, exit status 2.
  From ``call_command`` it is Django's ``CommandError("Error: <reason>")``.
- A ``CommandError`` raised otherwise (exit status 1) means the arguments were fine
  and the work failed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser

import hyperid_mfa
from hyperid_mfa.client.wire import parse_duration


class ArgumentType:
    """An argparse ``type=``: the value, or ``ArgumentTypeError`` saying what is wrong.

    It accepts the command line's text and the Python value that ``call_command``
    passes as a keyword alike, and gives back a value it accepts again: the commands
    run keyword values through it (argparse does not).
    """

    def __call__(self, value: object) -> Any:
        raise NotImplementedError


class WholeNumber(ArgumentType):
    def __init__(self, minimum: int | None = 1, maximum: int | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, value: object) -> int:
        if isinstance(value, str):
            try:
                number = int(value)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number")
        if self.minimum is not None and number < self.minimum:
            raise argparse.ArgumentTypeError(f"{number} is not {self.minimum} or more")
        if self.maximum is not None and number > self.maximum:
            raise argparse.ArgumentTypeError(f"{number} is more than {self.maximum}")
        return number


class Seconds(ArgumentType):
    """A finite number of seconds, above zero (or zero too, with ``zero=True``)."""

    def __init__(self, *, zero: bool = False) -> None:
        self.zero = zero

    def __call__(self, value: object) -> float:
        seconds = _number(value, "a number of seconds")
        if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not self.zero):
            wanted = "zero or a positive" if self.zero else "a positive"
            raise argparse.ArgumentTypeError(f"{value} is not {wanted} number of seconds")
        return seconds


class Share(ArgumentType):
    """A share of something, from 0 to 1."""

    def __call__(self, value: object) -> float:
        share = _number(value, "a number from 0 to 1")
        if not 0 <= share <= 1:  # NaN too
            raise argparse.ArgumentTypeError(f"{value} is not a number from 0 to 1")
        return share


def _number(value: object, wanted: str) -> float:
    """``value`` (text or a number, not a bool) as a float; else the usage error."""
    try:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not {wanted}") from None


class Duration(ArgumentType):
    """A duration written with its unit (``30d``, ``12h``); kept as written, for messages."""

    def __call__(self, value: object) -> str:
        if not isinstance(value, str):
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a duration: write a number and a unit (s, m, h or d)"
            )
        try:
            parse_duration(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return value.strip()


class Checked(ArgumentType):
    """Text that ``check`` accepts (returning it) or refuses with a ``ValueError``."""

    def __init__(self, check: Callable[[str], str]) -> None:
        self.check = check

    def __call__(self, value: object) -> str:
        if not isinstance(value, str):
            raise argparse.ArgumentTypeError(f"{value!r} is not text")
        try:
            return self.check(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None


class HyperIDMFACommand(BaseCommand):
    """The base of the ``hyperid_mfa_*`` commands; see the module docstring."""

    _parser: CommandParser | None = None

    def get_version(self) -> str:
        return hyperid_mfa.__version__

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Both manage.py and call_command make the parser before execute() runs.
        self._parser = super().create_parser(prog_name, subcommand, **kwargs)
        return self._parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        parser = self._argument_parser()
        for action in parser._actions:
            value = options.get(action.dest)
            if isinstance(action.type, ArgumentType) and value is not None:
                options[action.dest] = self._recheck(action, action.type, value)
        self.check_arguments(options)
        return super().execute(*args, **options)

    def check_arguments(self, options: dict[str, Any]) -> None:
        """Refuse combinations of options with :meth:`usage_error`; before any work."""

    def usage_error(self, message: str) -> NoReturn:
        """Refuse the arguments the way argparse refuses a bad one."""
        self._argument_parser().error(message)
        # CommandParser.error() exits or raises; this line is for the type checker.
        raise CommandError(f"Error: {message}", returncode=2)

    def _argument_parser(self) -> CommandParser:
        if self._parser is None:  # execute() called directly, without a parser
            return self.create_parser("manage.py", self.__module__.rsplit(".", 1)[-1])
        return self._parser

    def _recheck(self, action: argparse.Action, check: ArgumentType, value: object) -> object:
        # Values from the command line went through the check already and come back
        # unchanged; keyword values of call_command meet it here for the first time.
        try:
            if isinstance(value, (list, tuple)):  # action="append"
                return [check(item) for item in value]
            return check(value)
        except argparse.ArgumentTypeError as err:
            self.usage_error(f"argument {'/'.join(action.option_strings)}: {err}")
