"""summary.md of a GPU check: the machine, each stage's status, and its figures."""

from __future__ import annotations


def summary_markdown(summary: dict) -> str:
    meta, env = summary["meta"], summary.get("environment", {})
    lines = [f"# GPU check ({meta['mode']})", "",
             f"Started {meta['started']}, {meta.get('elapsed_s', 0):.0f} s of a {meta['budget_s']:.0f} s budget"
             + (f", finished {meta['finished']}." if meta.get("finished") else " (still running, or cut short)."), ""]
    if env:
        lines += [f"- GPU: {env.get('gpu', 'none')}" + (f", {env['gpu_memory_gib']} GiB" if "gpu_memory_gib" in env else ""),
                  f"- driver: {env.get('driver')}; torch {env.get('torch')}, CUDA {env.get('cuda')}, "
                  f"cuDNN {env.get('cudnn', '-')}, NCCL {env.get('nccl', '-')}",
                  f"- CPU: {env.get('cpu')} ({env.get('cpu_count')} cores); Python {env.get('python')}",
                  f"- not installed: {', '.join(env.get('packages_missing', [])) or 'nothing checked is missing'}", ""]
    lines += ["| stage | status | seconds | note |", "|---|---|---:|---|"]
    for name, record in summary["stages"].items():
        note = record.get("reason") or record.get("error") or ""
        lines.append(f"| {name} | {record['status']} | {record.get('seconds', '')} | {note} |")
    stages = summary["stages"]
    lines += _cuda_tests(stages["cuda_tests"]) + _benchmarks(stages["benchmarks"])
    lines += _distributed(stages["distributed"]) + _voice(stages["voice"]) + _limits(stages["limits"])
    return "\n".join(lines) + "\n"


def _cuda_tests(r: dict) -> list[str]:
    if "tests" not in r:
        return []
    lines = ["", "## CUDA tests", "", f"{r['tests']} collected from {len(r.get('files', []))} files: {r.get('passed', 0)} passed, "
             f"{r['failures']} failed, {r['errors']} errors, {r['skipped']} skipped."]
    return lines + [f"- {f}" for f in r.get("failed", [])]


def _benchmarks(r: dict) -> list[str]:
    heads = r.get("headline")
    if not heads:
        return []
    lines = ["", "## Benchmarks (details: benchmarks.md)", "", "| row | figure |", "|---|---|"]
    for key, value in heads.items():
        if isinstance(value, dict):
            value = f"{value['samples_per_s']:,} samples/s, {value['x_real_time']}x real time, peak {value['peak_mb']} MB"
        elif "SNR" in key:
            value = f"{value} dB"
        else:
            value = f"{value:,} samples/s"
        lines.append(f"| {key} | {value} |")
    if r.get("sections_skipped"):
        lines.append(f"\nSkipped for time: {', '.join(r['sections_skipped'])}.")
    return lines


def _distributed(r: dict) -> list[str]:
    if "backend" not in r:
        return []
    probe = r.get("ddp_probe", {})
    return ["", "## Distributed", "",
            f"{r['backend']}: {r['steps']} steps then --resume to {2 * r['steps']} (exit {r.get('first_exit')}, "
            f"{r.get('resume_exit')}); checkpoints {', '.join(r.get('checkpoints', [])) or 'none'}; resumed checkpoint "
            f"at iteration {r.get('resumed_iteration')}. DDP probe: {probe}"]


def _voice(r: dict) -> list[str]:
    if "sweep" not in r:
        return []
    lines = ["", "## Demo voice", "", f"Resumed from: {r.get('resumed_from') or 'nothing (fresh)'}; "
             f"{r['training_clips']} training clips, crops of {r['segment_length']} samples.", "",
             "| candidate | parameters | samples/s by batch | batch | steps | trial s | loss (last third) |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for name, s in r["sweep"].items():
        rates = ", ".join(f"{b['batch']}: {b['samples_per_s']:,}" for b in s["batch_samples_per_s"])
        lines.append(f"| {name} | {s['parameters']:,} | {rates} | {s['batch']} | {s['steps']} | {s['trial_s']} | "
                     f"{s['final_loss']} |")
    if "iterations" in r:
        lines += ["", f"Chose {r['chosen']} at batch {r['batch']}: {r['iterations']} iterations in {r['train_s']} s "
                  f"({r['samples_per_s']} samples/s), iteration {r['start_iteration']} -> {r['end_iteration']}; loss "
                  f"{r['loss_first']} -> {r['loss_last']}; {r['skipped_steps']} steps skipped (non-finite)."]
    if "checkpoint_bytes" in r:
        lines.append(f"{r['checkpoint']}: {r['checkpoint_bytes'] / 2**20:.2f} MiB ({r['checkpoint_dtype']}), "
                     f"loads and vocodes a held-out clip: {r['vocodes']}.")
    return lines


def _limits(r: dict) -> list[str]:
    if "tree" not in r:
        return []
    out = r["output"]
    return ["", "## Limits", "", f"Tree that travels: {r['tree']['mib']} MiB ({r['tree']['files']} files, "
            f"{r['tree']['measured_by']}). Output folder: {out['count']} files, {out['bytes'] / 2**20:.2f} MiB."]
