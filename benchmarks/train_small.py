"""Each model trains a few epochs at a small size on CPU: mean F1 against constant baselines.

    python -m benchmarks.train_small --data /tmp/synth --out /tmp/train_small [--models ...]
    python -m benchmarks.train_small --data /tmp/s --out /tmp/t --models jaa_net --epochs 1 --smoke

Run from the repository root. Without a cache in ``--data``, the default synthetic data set is
generated there first. The faces are cached at 112 px, and every model is made small (see
``SMALL``): JAA-Net with 96 px crops and channel unit 2, EAC-Net at 96 px with a quarter of the
VGG widths, ME-GraphAU stage 1 on a ResNet-18 (224 px, its fixed input); none has pretrained
weights (this machine has no ImageNet weights). EAC-Net (a VGG without batch norm) trains with
AdamW instead of SGD, and the learning rates of EAC-Net and ME-GraphAU are raised: the
published recipes assume pretrained backbones and thousands of iterations.

Prints, per model: seconds per epoch, the evaluated mean F1 of each epoch on the test
subjects of fold 1, and two constant baselines on the same frames: the majority class of
each AU in the training subjects (the "beats the baseline" check) and "always present",
the constant prediction with the highest F1.

``--smoke`` only checks that the script runs, in seconds: the synthetic set it generates has 3
subjects of 8 frames, and batches of 2 train JAA-Net and EAC-Net at 32 px (see ``SMOKE``);
its scores mean nothing.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from aufacs.analysis.evaluate import baseline_scores, evaluate_run
from aufacs.data.prepare import PrepareConfig, prepare
from aufacs.data.synthetic import SynthConfig, generate_synthetic
from aufacs.engine.config import TrainConfig
from aufacs.engine.train import train

CACHE_SIZE = 112
SMALL: dict[str, dict] = {
    "jaa_net": {"model_options": {"crop_size": 96, "unit_dim": 2}, "batch_size": 8},
    "eac_net": {
        "model_options": {"pretrained": None, "input_size": 96, "width_divisor": 4},
        "batch_size": 8,
        "optimizer": "adamw",
        "lr": 1e-3,
    },
    "me_graph_au": {
        "model_options": {"pretrained": None, "backbone": "resnet18", "stage": 1},
        "batch_size": 16,
        "lr": 1e-3,
    },
}

#: ``--smoke``: the synthetic set, and per model what replaces its entry of ``SMALL`` (AU
#: weights that stay finite where an AU never occurs in so few frames).
SMOKE_SET = SynthConfig(subjects=3, tasks=1, frames_per_task=8)
SMOKE_BATCH = {"batch_size": 2, "au_weights": "inverse_plus_one"}
SMOKE: dict[str, dict[str, Any]] = {
    "jaa_net": {"model_options": {"crop_size": 32, "unit_dim": 1}, **SMOKE_BATCH},
    "eac_net": {
        "model_options": {"pretrained": None, "input_size": 32, "width_divisor": 16},
        **SMOKE_BATCH,
    },
    "me_graph_au": SMOKE_BATCH,
}


def small_cache(data: Path, synth: SynthConfig) -> Path:
    """The 112 px cache of ``data``, generating the synthetic set ``synth`` there if empty."""
    cache = data / f"aufacs_cache_{CACHE_SIZE}"
    if not (cache / "cache.json").is_file():
        if not data.is_dir() or not any(data.iterdir()):
            generate_synthetic(data, synth, progress=False)
        config = PrepareConfig(data=data, kind="synthetic", size=CACHE_SIZE, cache=cache)
        prepare(config, progress=False)
    return cache


def train_and_score(model: str, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train ``model`` small on the cache's fold 1 and evaluate every epoch; its table row."""
    out = args.out / model
    shutil.rmtree(out, ignore_errors=True)
    options = {**SMALL[model], **(SMOKE[model] if args.smoke else {})}
    config = TrainConfig(
        model=model,
        data=str(args.data),
        cache=str(cache),
        out=str(out),
        epochs=args.epochs,
        device="cpu",
        threads=args.threads,
        progress=False,
        **options,
    )
    train(config)
    summary = evaluate_run(out, threads=args.threads, progress=False)
    epochs = pd.read_csv(out / "epochs.csv")
    return {
        "model": model,
        "s_per_epoch": epochs["seconds"].mean(),
        **{f"f1_epoch{int(r.epoch)}": r.mean_f1 for r in summary.itertuples()},
        "majority_f1": baseline_scores(out, "majority")["f1"].mean(),
        "always_present_f1": baseline_scores(out, "present")["f1"].mean(),
        "test_frames": int(summary["frames"].iloc[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic data folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--models", nargs="+", default=list(SMALL), choices=list(SMALL))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny set and tiny models, to check the script runs"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache = small_cache(args.data, SMOKE_SET if args.smoke else SynthConfig())
    rows = []
    for model in args.models:
        rows.append(train_and_score(model, cache, args))
        print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.3f"), flush=True)
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
