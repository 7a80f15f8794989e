"""The command-line programs, one module per command, each with ``main(argv=None) -> int``.

Run them as console scripts (``waveglow-train ...``), as ``python -m waveglow <command> ...``, or, for
NVIDIA's three commands, through the shims at the repository root (``python train.py``, ``inference.py``,
``distributed.py``) with NVIDIA's flags. Every command spells a checkpoint ``-w/--checkpoint``, its
inputs ``-f/--files`` and its output ``-o/--output`` (:mod:`waveglow.cli.arguments`).
"""

# command name -> (module under waveglow.cli, one-line summary); the console scripts are waveglow-<command>
COMMANDS = {
    "train": ("train", "train a vocoder from a config"),
    "inference": ("inference", "vocode mel spectrograms (or wav files) into WAV files"),
    "distributed": ("distributed", "launch training on every GPU of this machine via torchrun"),
    "compute-mels": ("compute_mels", "compute the model's mel features for a list of audio files"),
    "prepare-dataset": ("prepare_dataset", "check a dataset's audio and write train / validation / test lists"),
    "evaluate": ("evaluate", "score vocoders by copy synthesis (PESQ, STOI, log-mel L1, ...)"),
    "export": ("export", "export a checkpoint's inference path to ONNX or TorchScript"),
    "benchmark": ("benchmark", "time inference and training: samples/s, x real time, memory"),
    "convert-checkpoint": ("convert_checkpoint", "convert any checkpoint it reads (NVIDIA, DLE, ksw0306, L0SG) to this format"),
    "average-checkpoints": ("average_checkpoints", "average the last N checkpoints of a run into one"),
}
