"""The command-line layer: NVIDIA's shims (train.py, inference.py, distributed.py), ``python -m waveglow
<command>`` and the console scripts all reach the one program in waveglow/cli/ with the same flags, and
every command spells a checkpoint, its inputs and its output the same way."""

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


def route(command: str) -> list[str]:
    """How the command runs from the repository root: NVIDIA's shim where NVIDIA has one, else python -m waveglow."""
    return [f"{COMMANDS[command][0]}.py"] if command in TOP_LEVEL else ["-m", "waveglow", command]


def prog(command: str) -> str:
    """The program name argparse prints in the usage line for :func:`route`."""
    return f"{COMMANDS[command][0]}.py" if command in TOP_LEVEL else f"python -m waveglow {command}"


def help_body(text: str) -> str:
    """The help after its usage block (the usage line names the program, and wraps by its length)."""
    assert text.startswith("usage: "), text[:200]
    return text.split("\n\n", 1)[1]


@pytest.fixture(scope="module")
def subprocess_help() -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """``--help`` of every command through its route, and of train through ``python -m waveglow``, side by side."""
    env = {**checkout_env(), "COLUMNS": COLUMNS}
    routes = {(command, "shim"): [sys.executable, *route(command), "--help"] for command in COMMANDS}
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
def test_shim_or_module_runs_the_package_program(command, subprocess_help, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", COLUMNS)
    expected = program_help(["--help"], importlib.import_module(f"waveglow.cli.{COMMANDS[command][0]}").main, capsys)
    assert "--" in expected  # the flags are listed
    assert program_help([command, "--help"], waveglow_main, capsys) == expected  # python -m waveglow's dispatch
    shim = subprocess_help[command, "shim"]
    assert shim.returncode == 0, shim.stderr
    assert shim.stdout.startswith(f"usage: {prog(command)} ")
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
    assert waveglow_main(["convert-checkpoint", "-w", str(missing), "-o", str(tmp_path / "out.pt")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err
    assert not (tmp_path / "out.pt").exists()


# ------------------------------------------------------------------------------ one vocabulary

# command -> (how many values each term takes there, the other arguments it needs to parse); a checkpoint is
# always -w/--checkpoint (dest checkpoint), the inputs -f/--files (dest files), the output -o/--output (dest output)
VOCABULARY = {
    "train": ({"checkpoint": 1}, ["-c", "config.json"]),
    "inference": ({"checkpoint": 1, "files": 2, "output": 1}, []),
    "distributed": ({}, ["-c", "config.json"]),
    "compute-mels": ({"files": 2, "output": 1}, []),
    "prepare-dataset": ({"files": 2, "output": 1}, []),
    "evaluate": ({"checkpoint": 2, "files": 1, "output": 1}, []),
    "export": ({"checkpoint": 1, "output": 1}, []),
    "benchmark": ({"checkpoint": 1, "output": 1}, []),
    "convert-checkpoint": ({"checkpoint": 1, "output": 1}, []),
    "average-checkpoints": ({"checkpoint": 2, "output": 1}, []),
}
FLAGS = {"checkpoint": ("-w", "--checkpoint"), "files": ("-f", "--files"), "output": ("-o", "--output")}
PENDING = ()  # commands whose parsers do not take the shared flags yet


def parse(command: str, argv: list[str]):
    return importlib.import_module(f"waveglow.cli.{COMMANDS[command][0]}").parse_args(argv)


def test_the_vocabulary_covers_every_command():
    assert set(VOCABULARY) == set(COMMANDS)


@pytest.mark.parametrize("command", [
    pytest.param(c, marks=pytest.mark.xfail(reason="not yet on the shared flags", strict=True)) if c in PENDING else c
    for c in VOCABULARY])
def test_checkpoint_files_and_output_are_spelled_alike(command):
    terms, extra = VOCABULARY[command]
    values = {term: [f"{term}{i}.x" for i in range(count)] for term, count in terms.items()}
    expected = {term: v if terms[term] > 1 else v[0] for term, v in values.items()}
    for which in (0, 1):  # the short flags, then the long ones
        argv = list(extra)
        for term, v in values.items():
            argv += [FLAGS[term][which], *v]
        args = parse(command, argv)
        assert {term: getattr(args, term) for term in terms} == expected, argv


def test_nvidia_inference_spellings():
    nvidia = parse("inference", ["-f", "mels.txt", "-w", "waveglow_256channels_universal_v5.pt", "-o", "out",
                                 "-s", "0.6", "-d", "0.1"])
    spelled = parse("inference", ["--filelist_path", "mels.txt", "--waveglow_path", "waveglow_256channels_universal_v5.pt",
                                  "--output_dir", "out", "--sigma", "0.6", "--denoiser_strength", "0.1",
                                  "--is_fp16", "--sampling_rate", "16000"])
    for args in (nvidia, spelled):
        assert (args.files, args.checkpoint, args.output) == (["mels.txt"], "waveglow_256channels_universal_v5.pt", "out")
        assert (args.sigma, args.denoiser_strength) == (0.6, 0.1)
    assert spelled.is_fp16 and spelled.sampling_rate == 16000


def test_nvidia_train_and_distributed_spellings():
    args = parse("train", ["-c", "config.json", "-r", "1", "-g", "group_2024"])
    assert (args.config, args.rank, args.group_name, args.checkpoint) == ("config.json", 1, "group_2024", None)
    args = parse("train", ["--config", "config.json", "--rank", "0", "--group_name", "g"])
    assert (args.config, args.rank, args.group_name) == ("config.json", 0, "g")
    args = parse("distributed", ["-c", "config.json", "-s", "logs"])
    assert (args.config, args.log_dir) == ("config.json", "logs")


@pytest.mark.parametrize("command, argv, expected", [
    ("train", ["-c", "c.json", "--fine_tune", "ck"], {"checkpoint": "ck"}),
    ("export", ["--waveglow_path", "ck", "-o", "x.onnx"], {"checkpoint": "ck", "output": "x.onnx"}),
    ("compute-mels", ["--filelist_path", "l.txt", "--output_dir", "m"], {"files": ["l.txt"], "output": "m"}),
    ("compute-mels", ["--filelist", "l.txt", "-o", "m"], {"files": ["l.txt"], "output": "m"}),
    ("prepare-dataset", ["LJSpeech-1.1", "--output_dir", "lists"], {"files": ["LJSpeech-1.1"], "output": "lists"}),
    ("prepare-dataset", ["LJSpeech-1.1"], {"files": ["LJSpeech-1.1"], "output": "filelists"}),
    ("convert-checkpoint", ["in.pt", "out.pt"], {"checkpoint": "in.pt", "output": "out.pt"}),
    ("convert-checkpoint", ["in.pt", "-o", "out.pt", "-c", "c.json"], {"checkpoint": "in.pt", "output": "out.pt"}),
    ("average-checkpoints", ["-n", "10", "run/", "-o", "avg.pt"], {"checkpoint": ["run/"], "output": "avg.pt"}),
    ("average-checkpoints", ["a", "b", "-o", "avg.pt"], {"checkpoint": ["a", "b"], "output": "avg.pt"}),
])
def test_old_spellings_still_parse(command, argv, expected):
    args = parse(command, argv)
    assert {key: getattr(args, key) for key in expected} == expected


@pytest.mark.parametrize("command, hidden", [
    ("train", "--fine_tune"), ("export", "--waveglow_path"), ("compute-mels", "--filelist_path"),
    ("compute-mels", "--output_dir"), ("prepare-dataset", "--output_dir"), ("convert-checkpoint", "input"),
])
def test_old_spellings_are_left_out_of_help(command, hidden, capsys):
    with pytest.raises(SystemExit):
        parse(command, ["--help"])
    assert hidden not in capsys.readouterr().out


@pytest.mark.parametrize("command, argv, message", [
    ("compute-mels", ["-f", "a.txt", "--filelist", "b.txt", "-o", "m"], "not allowed with"),
    ("convert-checkpoint", ["in.pt", "-w", "other.pt", "-o", "out.pt"], "not allowed with"),
    ("convert-checkpoint", ["-o", "out.pt"], "-w/--checkpoint"),
    ("inference", ["-w", "ck", "-o", "out"], "-f/--files"),
])
def test_one_spelling_at_a_time_and_required_terms(command, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(command, argv)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # argparse's usage lines, then one error line
    assert ": error: " in last and message in last
