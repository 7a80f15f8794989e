"""Markdown tables of benchmark results: :func:`markdown` for a run's result (inference, precision,
training, families, trained state) and :func:`stream_markdown` for the streaming benchmark's."""

from __future__ import annotations

import os

from .meters import megabytes

__all__ = ["markdown", "families_markdown", "trained_state_markdown", "stream_markdown"]


def markdown(result: dict) -> str:
    """The run's header line, then a table per part of ``result`` that holds rows."""
    meta = result["meta"]
    lines = [
        f"Device: {meta['device_name']} ({meta['device']}, {meta['threads']} threads), torch {meta['torch']}, "
        f"{meta['date']}, config `{meta['config']}`, median of {meta['repeats']} after {meta['warmup']} warm-up; "
        f"load average {meta['loadavg_start'][0]:.2f} at start, {meta['loadavg_end'][0]:.2f} at end.",
    ]
    if result["inference"]:
        lines += [
            "",
            "| mode | conditioning | precision | batch | audio s | latency s | s per audio s | x real time | samples/s "
            "| peak MB | rel. diff vs plain |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    for r in result["inference"]:
        if "skipped" in r:
            lines.append(f"| {r['mode']} | | {r['precision']} | {r['batch']} | {r['seconds']:.2f} | {r['skipped']} ||||||")
            continue
        diff = "" if r["max_rel_diff_vs_plain"] is None else f"{r['max_rel_diff_vs_plain']:.1e}"
        lines.append(
            f"| {r['mode']} | {r['conditioning']} | {r['precision']} | {r['batch']} | {r['seconds']:.2f} | "
            f"{r['latency_s']:.3f} | {r['s_per_audio_s']:.3f} | {r['x_real_time']:.3f} | {r['samples_per_s']:.0f} | "
            f"{megabytes(r['peak_memory_bytes'])} | {diff} |"
        )
    if result["accuracy"]:
        lines += ["", "Reduced precision against float32 (fast path, sigma 0, batch 1):", "",
                  "| precision | audio s | SNR dB | max abs diff | fp32 output RMS | non-finite |", "|---|---|---|---|---|---|"]
        for r in result["accuracy"]:
            lines.append(f"| {r['precision']} | {r['seconds']:.2f} | {r['snr_db']:.1f} | {r['max_abs_diff']:.2e} | "
                         f"{r['reference_rms']:.2e} | {r['nonfinite']} |")
    if result["training"]:
        lines += ["", "| training | batch | segment | s per step | samples/s | peak MB |", "|---|---|---|---|---|---|"]
        for r in result["training"]:
            lines.append(f"| {r['precision']} | {r['batch']} | {r['segment_length']} | {r['step_s']:.3f} | "
                         f"{r['samples_per_s']:.0f} | {megabytes(r['peak_memory_bytes'])} |")
    if result.get("families"):
        lines += families_markdown(result["families"])
    if result.get("trained_state"):
        lines += trained_state_markdown(result["trained_state"])
    return "\n".join(lines) + "\n"


def families_markdown(rows: list[dict]) -> list[str]:
    lines = ["", "Model families on the same speech (random weights, batch 1, fp32; peak: tensor memory of the first call "
             "or step, the inference object's set-up not counted):", "",
             "| family (config) | parameters | mode | audio s | s per s of audio | peak MB | train samples/s |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        name = f"{r['family']} ({os.path.splitext(os.path.basename(r['config']))[0]})"
        if r["mode"] == "train":
            lines.append(f"| {name} | {r['parameters']:,} | train step ({r['segment_length']} samples) | | | "
                         f"{megabytes(r['peak_memory_bytes'])} | {r['samples_per_s']:,.0f} |")
        else:
            lines.append(f"| {name} | {r['parameters']:,} | {r['mode']} | {r['seconds']:.2f} | "
                         f"{r['s_per_audio_s']:.2f} | {megabytes(r['peak_memory_bytes'])} | |")
    return lines


def trained_state_markdown(rows: list[dict]) -> list[str]:
    lines = ["", "Training steps from a trained state (crops of --clip; the loop flushes subnormals to zero):", "",
             ("| checkpoint | family | iteration | batch x segment | s per step, training loop | "
              "s per step, subnormals kept | kept / loop | subnormals written per kept step |"),
             "|---|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {os.path.basename(r['checkpoint'])} | {r['family']} | {r['iteration']} | "
                     f"{r['batch']} x {r['segment_length']} | {r['loop_step_s']:.3f} | {r['kept_step_s']:.3f} | "
                     f"{r['kept_over_loop']:.2f} | {r['subnormals_written_kept']:,} |")
    return lines


def stream_markdown(result: dict) -> str:
    """The streaming benchmark's timing table and error table."""
    meta = result["meta"]
    lines = [f"Device: {meta['cpu']} ({meta.get('device', 'cpu')}, {meta['threads']} threads), torch {meta['torch']}, "
             f"{meta['date']}; load average {meta['loadavg_start'][0]:.2f} at start, {meta['loadavg_end'][0]:.2f} at "
             "end (a shared machine: timings are indicative). Random weights perturbed so no coupling is the identity.",
             "",
             "| family | parameters | receptive field past / future frames | algorithmic latency | frames per push | "
             "window frames | compute per push s | ms per pushed frame | real-time factor | first audio s |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["families"]:
        for t in r["timing"]:
            lines.append(f"| {r['family']} | {r['parameters']:,} | {r['receptive_field']['past']} / "
                         f"{r['receptive_field']['future']} | {r['latency_frames']} frames, {r['latency_ms']:.0f} ms | "
                         f"{t['chunk_frames']} | {t['window_frames']} | {t['push_s']:.3f} | {t['ms_per_frame']:.1f} | "
                         f"{t['rtf']:.2f} | {t['first_audio_s']:.2f} |")
    lines += ["", "Error against whole-utterance inference by lookahead (a frame's audio when exactly that many "
              "frames after it have arrived; sampled frames of a speech clip's mel):", "",
              "| family | weights | lookahead | frames | max abs error | error / signal (dB) | signal RMS |",
              "|---|---|---|---:|---:|---:|---:|"]
    for r in result["families"] + result["checkpoints"]:
        for e in r["errors"]:
            db = "exact (0)" if e["relative_error_db"] is None else f"{e['relative_error_db']:.1f}"
            lines.append(f"| {r['family']} | {e['weights']} | {e['lookahead']} | {e['lookahead_frames']} | "
                         f"{e['max_abs_error']:.2e} | {db} | {e['signal_rms']:.3f} |")
    return "\n".join(lines) + "\n"
