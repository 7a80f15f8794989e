#!/usr/bin/env bash
# The package as a user installs it: build the wheel from the working tree, install it with the core
# dependencies only (no extras) into a clean virtualenv, and from outside the repository run every console
# script's --help and one real vocoding: test clips -> waveglow-compute-mels -> a 2-iteration waveglow-train
# (configs/tiny.json) -> waveglow-inference, checking the WAV's length; waveglow-distributed trains 1 step.
# Any failure stops it with a non-zero exit. KEEP=1 keeps the temporary folder.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/waveglow-wheel.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then echo "wheel check: keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
fail() { echo "wheel check FAILED: $*" >&2; exit 1; }
TORCH_PIN="$(grep -E '^torch==' "$REPO/requirements.txt")" || fail "no torch== pin in requirements.txt"

# Build from a copy of the working tree (tracked and untracked, not ignored), so no stale build/ folder leaks in.
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/run"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) \
    | tar -C "$WORK/src" -xf -
"$PYTHON" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q "$TORCH_PIN"   # the exact pin resolves to the CPU wheel; an unpinned torch is a CUDA build
"$VPY" -m pip wheel -q --no-deps "$WORK/src" -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/waveglow-*.whl)" || fail "no wheel built"
"$VPY" -m pip install -q "$WHEEL"
echo "wheel check: installed $(basename "$WHEEL") and its core dependencies into $WORK/venv"

cd "$WORK/run"   # outside the repository: nothing may come from the checkout
export PATH="$WORK/venv/bin:$PATH" PYTHONPATH= OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
location="$(python -c 'import waveglow, os; print(os.path.dirname(waveglow.__file__))')"
case "$location" in "$WORK/venv/"*) ;; *) fail "waveglow imported from $location, not the installed wheel" ;; esac
for command in train inference distributed compute-mels prepare-dataset evaluate export benchmark convert-checkpoint \
        average-checkpoints; do
    "waveglow-$command" --help > /dev/null || fail "waveglow-$command --help"
done
python -m waveglow --help > /dev/null || fail "python -m waveglow --help"
echo "wheel check: --help of the 10 console scripts and python -m waveglow"

cp "$REPO/configs/tiny.json" config.json
ls "$REPO"/tests/data/wavs/*.wav > clips.txt
head -n 1 clips.txt > held_out.txt
waveglow-compute-mels -f held_out.txt -o mels -c config.json || fail "waveglow-compute-mels"
waveglow-train -c config.json --set data_config.training_files=clips.txt --set train_config.output_directory=run \
    --set train_config.max_iterations=2 --set train_config.iters_per_checkpoint=2 || fail "waveglow-train"
[ -f run/waveglow_2 ] || fail "waveglow-train wrote no run/waveglow_2"
waveglow-distributed -c config.json --nproc 1 -s dist_logs -a "--set data_config.training_files=clips.txt \
    --set train_config.output_directory=dist --set train_config.max_iterations=1 --set train_config.iters_per_checkpoint=1" \
    || fail "waveglow-distributed"
[ -f dist/waveglow_1 ] || fail "waveglow-distributed wrote no dist/waveglow_1"
name="$(basename "$(head -n 1 held_out.txt)")"
waveglow-inference -f "mels/$name.pt" -w run/waveglow_2 -o out || fail "waveglow-inference"
python - config.json "mels/$name.pt" "out/${name}_synthesis.wav" <<'PY' || fail "the vocoded WAV"
import json
import sys
import wave

import torch

config_path, mel_path, wav_path = sys.argv[1:]
data = json.load(open(config_path))["data_config"]
frames = torch.load(mel_path, weights_only=True).shape[-1]  # (n_mel, frames)
with wave.open(wav_path) as f:
    samples, rate = f.getnframes(), f.getframerate()
expected = frames * data["hop_length"]
assert rate == data["sampling_rate"] and samples == expected, (wav_path, rate, samples, expected)
print(f"wheel check: vocoded {wav_path}: {samples} samples = {frames} frames x hop {data['hop_length']} at {rate} Hz")
PY
echo "wheel check: OK"
