"""The command-line layer: each command's shim (train.py, scripts/*.py), ``python -m waveglow <command>``
and its console script all reach the one program in waveglow/cli/ with the same flags."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from waveglow.__main__ import main as waveglow_main
from waveglow.cli import COMMANDS

from conftest import REPO, checkout_env

COLUMNS = "100"  # argparse wraps help to the terminal width: the same width for every route
TOP_LEVEL = ("train", "inference", "distributed")  # NVIDIA's commands at the repository root


def shim_path(command: str) -> str:
    module = COMMANDS[command][0]
    return f"{module}.py" if command in TOP_LEVEL else os.path.join("scripts", f"{module}.py")


def help_body(text: str) -> str:
    """The help after its usage block (the usage line names the program, and wraps by its length)."""
    assert text.startswith("usage: "), text[:200]
    return text.split("\n\n", 1)[1]


@pytest.fixture(scope="module")
def subprocess_help() -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """``--help`` of every command through its shim, and of train through ``python -m waveglow``, side by side."""
    env = {**checkout_env(), "COLUMNS": COLUMNS}
    routes = {(command, "shim"): [sys.executable, shim_path(command), "--help"] for command in COMMANDS}
    routes["train", "module"] = [sys.executable, "-m", "waveglow", "train", "--help"]
    running = {key: subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True) for key, argv in routes.items()}
    results = {}
    for key, process in running.items():
        out, err = process.communicate(timeout=300)
        results[key] = subprocess.CompletedProcess(routes[key], process.returncode, out, err)
    return results


def program_help(argv: list[str], main, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return help_body(capsys.readouterr().out)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_shim_and_module_run_the_package_program(command, subprocess_help, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", COLUMNS)
    expected = program_help(["--help"], importlib.import_module(f"waveglow.cli.{COMMANDS[command][0]}").main, capsys)
    assert "--" in expected  # the flags are listed
    assert program_help([command, "--help"], waveglow_main, capsys) == expected  # python -m waveglow's dispatch
    shim = subprocess_help[command, "shim"]
    assert shim.returncode == 0, shim.stderr
    assert shim.stdout.startswith(f"usage: {os.path.basename(shim_path(command))} ")
    assert help_body(shim.stdout) == expected


def test_python_dash_m_waveglow(subprocess_help, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", COLUMNS)
    module = subprocess_help["train", "module"]
    assert module.returncode == 0, module.stderr
    assert module.stdout.startswith("usage: python -m waveglow train ")
    assert help_body(module.stdout) == program_help(["--help"], importlib.import_module("waveglow.cli.train").main,
                                                    capsys)


def test_console_scripts_are_the_commands():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {f"waveglow-{name}": f"waveglow.cli.{module}:main" for name, (module, _) in COMMANDS.items()}


def test_module_lists_the_commands(capsys):
    assert waveglow_main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert all(f"  {name} " in listing for name in COMMANDS)
    assert waveglow_main([]) == 2  # no command: the same list, as an error
    assert "commands:" in capsys.readouterr().err


def test_unknown_command_is_one_line(capsys):
    assert waveglow_main(["trian", "-c", "x.json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "unknown command 'trian'" in captured.err


def test_module_passes_the_arguments_on(tmp_path, capsys):
    """Everything after the command goes to its program: here convert-checkpoint's own error for a missing file."""
    missing = tmp_path / "missing.pt"
    assert waveglow_main(["convert-checkpoint", str(missing), str(tmp_path / "out.pt")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err
    assert not (tmp_path / "out.pt").exists()
