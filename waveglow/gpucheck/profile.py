"""The sizes of a GPU check: the real ones for a GPU, tiny ones for the CPU rehearsal.

Time shares are seconds of the budget a stage may take at most; minimums are what a stage needs to
be worth starting (the stages before it leave that much). Voice training has no share: it takes
what is left. The voice's candidate architectures all fit the returned checkpoint's 15 MiB in
float16 (WaveGlow's upsampler alone, 80 x 80 x 1024 weights, is 12.5 MiB of it); see
docs/benchmarks.md, "The demo voice: model size and batch".
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_CHECKPOINT_BYTES = 15 * 2**20


@dataclass
class Profile:
    name: str  # "gpu" or "cpu-rehearsal"
    device: str
    default_budget_s: float
    share_s: dict[str, float]
    minimum_s: dict[str, float]
    # benchmarks
    bench_config: str
    bench_lengths: list[float]
    bench_batches: list[int]
    bench_precisions: list[str]
    bench_modes: list[str]
    train_batch: int
    train_segment: int
    flowavenet_config: str
    flowavenet_overrides: list[str] = field(default_factory=list)
    waveflow_config: str = "configs/waveflow-h16-r64.json"
    waveflow_overrides: list[str] = field(default_factory=list)
    bench_overrides: list[str] = field(default_factory=list)
    repeats: int = 3
    train_precisions: list[str] = field(default_factory=lambda: ["fp32", "amp"])
    # distributed
    dist_backend: str = "nccl"
    dist_steps: int = 4
    # the demo voice
    voice_candidates: dict[str, dict] = field(default_factory=dict)  # name -> waveglow_config overrides
    voice_batches: list[int] = field(default_factory=list)
    voice_segment: int = 16000
    voice_trial_s: float = 15.0  # training time per candidate in the architecture sweep
    voice_checkpoint_every_s: float = 60.0
    voice_learning_rate: float = 1e-3
    voice_warmup_steps: int = 200  # learning-rate warm-up when resuming the shipped voice with a fresh Adam
    voice_train_cap_s: float | None = None  # None: train until the budget ends (the GPU); else at most this long


def _arch(flows: int, layers: int, channels: int, early_every: int) -> dict:
    return {"n_flows": flows, "n_early_every": early_every, "n_early_size": 2,
            "WN_config": {"n_layers": layers, "n_channels": channels, "kernel_size": 3}}


def gpu_profile() -> Profile:
    return Profile(
        name="gpu", device="cuda", default_budget_s=480,
        share_s={"environment": 15, "cuda_tests": 75, "benchmarks": 150, "distributed": 60, "limits": 10},
        minimum_s={"environment": 2, "cuda_tests": 20, "benchmarks": 30, "distributed": 20, "voice": 60, "limits": 2},
        bench_config="configs/config.json", bench_lengths=[1.0, 10.0], bench_batches=[1, 8],
        bench_precisions=["fp16", "fp32", "bf16"], bench_modes=["plain", "fast", "cudagraph"],
        train_batch=12, train_segment=16000, flowavenet_config="configs/flowavenet.json",
        voice_candidates={  # float16 sizes: 14.0, 14.1 and 14.4 MiB
            "demo": _arch(4, 4, 32, 2),      # configs/demo.json's: few flows, wide enough
            "deeper": _arch(6, 4, 24, 3),    # more flows, narrower
            "longer": _arch(4, 6, 28, 2),    # a longer receptive field per flow
        },
        voice_batches=[16, 32, 48], voice_segment=16000, voice_trial_s=15.0, voice_checkpoint_every_s=60.0,
    )


def rehearsal_profile() -> Profile:
    tiny = ["waveglow_config.WN_config.n_layers=2", "waveglow_config.WN_config.n_channels=8"]
    return Profile(
        name="cpu-rehearsal", device="cpu", default_budget_s=150,
        share_s={"environment": 5, "cuda_tests": 15, "benchmarks": 25, "distributed": 50, "limits": 5},
        minimum_s={"environment": 1, "cuda_tests": 3, "benchmarks": 3, "distributed": 5, "voice": 6, "limits": 1},
        bench_config="configs/tiny.json", bench_lengths=[0.1], bench_batches=[1],
        bench_precisions=["fp32", "bf16"], bench_modes=["plain", "fast", "cudagraph"],
        train_batch=1, train_segment=2048, train_precisions=["fp32"], bench_overrides=tiny,
        flowavenet_config="configs/flowavenet_small.json",
        flowavenet_overrides=["flowavenet_config.n_block=2", "flowavenet_config.n_flow=1", "flowavenet_config.n_layer=1",
                              "flowavenet_config.n_channels=8", "flowavenet_config.block_per_split=1",
                              "data_config.segment_length=2048"],
        waveflow_config="configs/waveflow_small.json",
        waveflow_overrides=["waveflow_config.res_channels=8", "waveflow_config.n_layer=2", "waveflow_config.n_flow=2",
                            "data_config.segment_length=2048"],
        repeats=1, dist_backend="gloo", dist_steps=2,
        voice_candidates={"tiny-a": _arch(2, 2, 8, 1), "tiny-b": _arch(2, 1, 12, 1)},
        voice_batches=[1, 2], voice_segment=2048, voice_trial_s=1.0, voice_checkpoint_every_s=3.0,
        voice_train_cap_s=6.0,
    )
