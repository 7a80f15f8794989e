"""``python -m waveglow <command> [args]``: the console scripts under one name."""

from __future__ import annotations

import importlib
import sys

from waveglow.cli import COMMANDS


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m waveglow <command> [args]   (<command> --help for its flags)", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    if from_command_line:
        sys.argv[0] = f"python -m waveglow {name}"  # argparse's usage line names the command as typed
    module = importlib.import_module(f"waveglow.cli.{COMMANDS[name][0]}")
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
