"""The command line's shared pieces: argparse types that range-check numeric flags where they are
parsed, and the flags every command spells the same way (:func:`add_checkpoint`, :func:`add_files`,
:func:`add_output`).

A value out of range stops the command before it does anything, with argparse's one line naming the
flag (``error: argument --sigma: must be a number >= 0, got 'nan'``) and exit status 2. NaN and
infinity are out of range for every float flag.
"""

from __future__ import annotations

import argparse
import inspect
import math
from typing import Callable

__all__ = [
    "positive_int", "non_negative_int", "positive_float", "non_negative_float", "fraction", "port", "onnx_opset",
    "add_checkpoint", "add_files", "add_output", "add_hidden_alias",
]


def _checked(convert: Callable[[str], float], test: Callable[[float], bool], wanted: str) -> Callable[[str], float]:
    """An argparse ``type`` converting with ``convert`` and accepting what passes ``test``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = wanted  # argparse names the type in some messages
    return parse


positive_int = _checked(int, lambda v: v > 0, "a positive integer")
non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: 0 < v < math.inf, "a positive number")
non_negative_float = _checked(float, lambda v: 0 <= v < math.inf, "a number >= 0")
fraction = _checked(float, lambda v: 0 <= v <= 1, "a number from 0 to 1")
port = _checked(int, lambda v: 0 < v < 65536, "a port number from 1 to 65535")


def onnx_opset(minimum: int) -> Callable[[str], int]:
    """An opset from ``minimum`` to the newest one the installed onnx package knows (no upper bound without it)."""
    try:
        from onnx.defs import onnx_opset_version

        newest = onnx_opset_version()
    except ImportError:
        newest = None
    if newest is None:
        return _checked(int, lambda v: v >= minimum, f"an ONNX opset >= {minimum}")
    return _checked(int, lambda v: minimum <= v <= newest, f"an ONNX opset from {minimum} to {newest}")


# ------------------------------------------------------------------------------ the shared vocabulary
#
# Every command spells the same things the same way: a checkpoint is -w/--checkpoint (dest ``checkpoint``),
# the inputs -f/--files (dest ``files``), what it writes -o/--output (dest ``output``). NVIDIA's spellings
# (--waveglow_path, --filelist_path, --output_dir) are listed beside them where NVIDIA has the command
# (``nvidia=True``); older spellings of our own commands still parse but are not shown (``aliases``, and
# ``positional`` for a checkpoint, list or output that was once given without a flag).

NVIDIA_SPELLINGS = {"checkpoint": "--waveglow_path", "files": "--filelist_path", "output": "--output_dir"}


class _PositionalAlias(argparse.Action):
    """A hidden positional form of a flag: stores its value under the flag's dest when one was given."""

    def __init__(self, option_strings, dest, target: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.target = target

    def __call__(self, parser, namespace, values, option_string=None):
        if values is not argparse.SUPPRESS and values not in (None, []):
            setattr(namespace, self.target, values)


def add_hidden_alias(parser, action: argparse.Action, *option_strings: str) -> argparse.Action:
    """Another spelling of ``action``'s flag that parses the same into the same dest and is left out of --help.

    ``parser`` is where the alias goes: the parser, an argument group, or a mutually exclusive group
    (then giving both spellings is an error). Errors about the alias's value name the alias, as typed.
    """
    accepted = inspect.signature(type(action).__init__).parameters
    settings = {"nargs": action.nargs, "const": action.const, "type": action.type, "choices": action.choices,
                "metavar": action.metavar}
    kwargs = {key: value for key, value in settings.items() if key in accepted and value is not None}
    return parser.add_argument(*option_strings, action=type(action), dest=action.dest, default=argparse.SUPPRESS,
                               help=argparse.SUPPRESS, **kwargs)


def _add_term(parser, dest: str, flags: tuple[str, ...], *, nvidia: bool, required: bool, aliases, positional,
              group, kwargs) -> argparse.Action:
    """Add ``flags`` (+ NVIDIA's spelling, hidden aliases, a hidden positional) storing to ``dest``."""
    flags = flags + ((NVIDIA_SPELLINGS[dest],) if nvidia else ())
    aliases = tuple(a for a in aliases if a not in flags)
    if group is None and (aliases or positional):
        group = parser.add_mutually_exclusive_group(required=required)  # one spelling at a time; one is required
    elif group is None:
        group, kwargs = parser, {**kwargs, "required": required}
    action = group.add_argument(*flags, dest=dest, **kwargs)
    if aliases:
        add_hidden_alias(group, action, *aliases)
    if positional:
        nargs = "*" if action.nargs in ("+", "*") else "?"
        group.add_argument(positional, action=_PositionalAlias, target=dest, nargs=nargs, type=action.type,
                           default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return action


def add_checkpoint(parser, *, nvidia: bool = False, required: bool = True, aliases=(), positional: str | None = None,
                   group=None, **kwargs) -> argparse.Action:
    """``-w/--checkpoint`` (dest ``checkpoint``): the weights to use, in any format ``load_checkpoint`` reads.

    ``nvidia``: also list NVIDIA's ``--waveglow_path``. ``aliases``: older flags that still parse, unlisted.
    ``positional``: the name of a hidden positional form (``convert checkpoint.pt ...``). ``group``: add it
    to this mutually exclusive group (e.g. one with ``--onnx``) instead of on its own; the group's
    ``required`` then decides. Other keywords (``nargs``, ``action``, ``default``, ``help``, ``metavar``)
    go to ``add_argument``. Returns the action.
    """
    kwargs.setdefault("help", "checkpoint (any format load_checkpoint reads)")
    return _add_term(parser, "checkpoint", ("-w", "--checkpoint"), nvidia=nvidia, required=required, aliases=aliases,
                     positional=positional, group=group, kwargs=kwargs)


def add_files(parser, *, nvidia: bool = False, required: bool = True, aliases=(), positional: str | None = None,
              group=None, **kwargs) -> argparse.Action:
    """``-f/--files`` (dest ``files``, a list): the inputs, each a file, a folder or a file list.

    ``nvidia``: also list NVIDIA's ``--filelist_path``. The other keywords as for :func:`add_checkpoint`;
    ``nargs`` defaults to ``"+"``.
    """
    kwargs.setdefault("nargs", "+")
    kwargs.setdefault("metavar", "FILE")
    kwargs.setdefault("help", "input files, folders of them, or file lists")
    return _add_term(parser, "files", ("-f", "--files"), nvidia=nvidia, required=required, aliases=aliases,
                     positional=positional, group=group, kwargs=kwargs)


def add_output(parser, *, nvidia: bool = False, required: bool = True, aliases=(), positional: str | None = None,
               group=None, **kwargs) -> argparse.Action:
    """``-o/--output`` (dest ``output``): where the command writes (a file or a folder, as the command says).

    ``nvidia``: also list NVIDIA's ``--output_dir``. The other keywords as for :func:`add_checkpoint`.
    """
    return _add_term(parser, "output", ("-o", "--output"), nvidia=nvidia, required=required, aliases=aliases,
                     positional=positional, group=group, kwargs=kwargs)
