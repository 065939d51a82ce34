"""Train a preset's models as the study does, outside the notebooks: mean F1 of every epoch.

    python -m benchmarks.train_small --data /tmp/synth --out /tmp/runs [--models ...]
    python -m benchmarks.train_small --data /tmp/synth72 --out /tmp/runs --models eac_net \\
        --settings '{"eac_net": {"epochs": 14, "optimizer": "sgd", "lr": 0.01}}' --maps
    python -m benchmarks.train_small --data /tmp/s --out /tmp/t --models jaa_net --smoke

Run from the repository root; this is how every row of ``docs/training_experiments.md`` was
measured. Each model is trained with the :class:`~aufacs.engine.config.TrainConfig` that the
study's ``02_train`` step makes of the preset (``--preset``, default ``cpu``; ``--smoke``: the
``smoke`` preset), on fold 1 of the preset's synthetic set, which is generated into ``--data``
with ``--seed`` unless ``--data`` already holds a data set (then it is used as it is). The
faces are cached at the preset's aligned size (``--aligned`` another) in
``<data>/aufacs_cache_<size>``. ``--settings`` changes a model's training: a JSON object of
TrainConfig fields per model (``model_options`` are merged into the preset's; ``image_size``
sets the input side through the model's own option, as the study does).

Prints, per model: seconds per epoch, the evaluated mean F1 of each epoch on the test
subjects, two constant baselines on the same frames (each AU's majority class in the training
subjects, and "always present", the constant prediction with the highest F1), and, with
``--maps``, how many times a uniform map's mass each of the model's maps puts inside the AU
regions of the test faces (:func:`aufacs.report.maps.uniform_ratios`, last epoch).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from aufacs.analysis.evaluate import baseline_scores, evaluate_run
from aufacs.data.prepare import PrepareConfig, prepare
from aufacs.data.synthetic import generate_synthetic
from aufacs.engine.config import TrainConfig
from aufacs.engine.train import train
from aufacs.report import maps
from aufacs.report.presets import PRESETS
from aufacs.report.rehearsal import training_config, training_steps
from aufacs.report.study import StudyConfig, study_plan
from aufacs.report.workbook import with_image_size

#: Test faces whose maps are scored with ``--maps`` (the ``cpu`` preset's ``score_samples``).
MAP_SAMPLES = 48


def preset_cache(data: Path, preset: str, aligned: int | None, seed: int) -> Path:
    """The aligned-face cache of ``data``, generating the preset's synthetic set (with
    ``seed``) there first if ``data`` is empty."""
    size = aligned or PRESETS[preset].aligned_size
    cache = data / f"aufacs_cache_{size}"
    if not (cache / "cache.json").is_file():
        if not data.is_dir() or not any(data.iterdir()):
            synth = dataclasses.replace(PRESETS[preset].synth, seed=seed)
            generate_synthetic(data, synth, progress=False)
        prepare(PrepareConfig(data=data, kind="synthetic", size=size, cache=cache), progress=False)
    return cache


def study_trainings(args: argparse.Namespace) -> dict[str, TrainConfig]:
    """Per model, the TrainConfig of the study's ``02_train`` step for it, with the model's
    ``--settings`` applied."""
    study = StudyConfig(
        name=args.out.name,
        data=args.data,
        size=args.preset,
        models=tuple(args.models),
        epochs=args.epochs,
        device="cpu",
        seed=args.seed,
        threads=args.threads,
        runs=args.out.parent,
    )
    configs = {}
    for step in training_steps(study_plan(study)):
        config = training_config(step.parameters)
        configs[config.model] = with_settings(config, args.settings.get(config.model, {}))
    return configs


def with_settings(config: TrainConfig, settings: dict[str, Any]) -> TrainConfig:
    """``config`` with TrainConfig fields replaced by ``settings``; its ``model_options`` are
    merged into the config's and ``image_size`` goes through the model's own option."""
    settings = dict(settings)
    image_size = settings.pop("image_size", None)
    options = {**config.model_options, **settings.pop("model_options", {})}
    config = dataclasses.replace(config, model_options=options, **settings)
    return with_image_size(config, image_size)


def train_and_score(config: TrainConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Train one model on the cache's fold and evaluate every epoch; its table row."""
    shutil.rmtree(config.out, ignore_errors=True)
    config = dataclasses.replace(config, threads=args.threads, progress=False)
    train(config)
    out = Path(config.out)
    summary = evaluate_run(out, threads=args.threads, progress=False)
    epochs = pd.read_csv(out / "epochs.csv")
    row = {
        "model": config.model,
        "s_per_epoch": epochs["seconds"].mean(),
        **{f"f1_epoch{int(r.epoch)}": r.mean_f1 for r in summary.itertuples()},
        "majority_f1": baseline_scores(out, "majority")["f1"].mean(),
        "always_present_f1": baseline_scores(out, "present")["f1"].mean(),
        "test_frames": int(summary["frames"].iloc[0]),
    }
    if args.maps:
        masses = maps.region_mass(
            {config.model: out}, gradcam_for=[config.model], n_samples=MAP_SAMPLES
        )
        for name, ratio in maps.uniform_ratios(masses)["ratio"].items():
            row[f"ratio_{name.split('(')[-1].rstrip(')')}"] = ratio
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic data folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--models", nargs="+", default=list(PRESETS["cpu"].models))
    parser.add_argument("--preset", default="cpu", choices=list(PRESETS))
    parser.add_argument("--epochs", type=int, default=None, help="every model's (default: preset)")
    parser.add_argument("--aligned", type=int, default=None, help="face size (default: preset)")
    parser.add_argument("--settings", type=json.loads, default={}, help="JSON, see above")
    parser.add_argument("--seed", type=int, default=0, help="of the synthetic set and training")
    parser.add_argument("--maps", action="store_true", help="score the maps against uniform")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--smoke", action="store_true", help="the smoke preset: checks the script")
    args = parser.parse_args()
    if args.smoke:
        args.preset = "smoke"
    torch.set_num_threads(args.threads)
    cache = preset_cache(args.data, args.preset, args.aligned, args.seed)
    rows = []
    for config in study_trainings(args).values():
        rows.append(train_and_score(dataclasses.replace(config, cache=cache), args))
        print(pd.DataFrame(rows[-1:]).to_string(index=False, float_format="%.3f"), flush=True)
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
