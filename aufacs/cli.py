"""The ``aufacs`` command line: parses arguments, calls the package, prints one-sentence errors.

Subcommands: ``synth`` (generate the synthetic data set), ``preview`` (a picture of it),
``audit`` (the data-cleaning report), ``prepare`` (audit + aligned-crop cache), ``train``,
``evaluate``, ``cross-evaluate`` (a run on another data set's shared AUs), ``predict`` (your
photos and videos), ``import`` (published weights as a run), ``export`` (a run's model as one
file), ``study`` (everything on the embedded default), ``notebooks`` (a copy of the workbook).
Under ``torchrun``:
``torchrun --nproc_per_node=N -m aufacs.cli train ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aufacs.core.config import add_config_arguments, config_from_args
from aufacs.core.errors import AufacsError


def _synth(args: argparse.Namespace) -> None:
    from aufacs.data.synthetic import SynthConfig, generate_synthetic

    config = config_from_args(SynthConfig, args)
    manifest = generate_synthetic(args.out, config, overwrite=args.overwrite)
    print(f"wrote {manifest.summary()} to {args.out}")


def _preview(args: argparse.Namespace) -> None:
    from aufacs.data.synthetic import SynthConfig, preview_grid

    preview_grid(args.out, config_from_args(SynthConfig, args), n=args.n)
    print(f"wrote {args.out}")


def _audit(args: argparse.Namespace) -> None:
    from aufacs.data.prepare import PrepareConfig, audit_dataset

    report = audit_dataset(config_from_args(PrepareConfig, args), args.out)
    _print_audit(report, args.out)


def _prepare(args: argparse.Namespace) -> None:
    from aufacs.data.prepare import PrepareConfig, cache_folder, prepare

    config = config_from_args(PrepareConfig, args)
    prepared = prepare(config)
    folder = cache_folder(config.data, config.cache)
    _print_audit(prepared.report, folder)
    print(f"cached {len(prepared.cache)} aligned faces in {folder}")


def _print_audit(report, folder: Path) -> None:
    found = report.counts[report.counts > 0]
    print(
        f"{len(report.clean)} clean frames; defects: "
        + (", ".join(f"{k} {v}" for k, v in found.items()) or "none")
    )
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"audit written to {folder}")


def _train(args: argparse.Namespace) -> None:
    from aufacs.core.config import load_config
    from aufacs.engine.config import TrainConfig
    from aufacs.engine.train import train

    base = load_config(TrainConfig, args.config) if args.config else None
    run = train(config_from_args(TrainConfig, args, base=base))
    print(f"run folder: {run}")


def _evaluate(args: argparse.Namespace) -> None:
    from aufacs.analysis.evaluate import EvaluateConfig, evaluate

    summary = evaluate(config_from_args(EvaluateConfig, args))
    print(summary.to_string(index=False))


def _cross_evaluate(args: argparse.Namespace) -> None:
    from aufacs.analysis.cross_dataset import CrossConfig, evaluate_across

    scores = evaluate_across(config_from_args(CrossConfig, args))
    print(scores[["au", "f1", "accuracy", "support", "known"]].to_string(index=False))
    print(f"mean F1 over the {len(scores)} shared AUs: {scores['f1'].mean():.3f}")


def _cross_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.analysis.cross_dataset import CrossConfig

    add_config_arguments(parser, CrossConfig)


def _predict(args: argparse.Namespace) -> None:
    from aufacs.inference.predict import PredictConfig, predict_paths

    config = config_from_args(PredictConfig, args)
    table = predict_paths(dataclasses.replace(config, paths=tuple(args.inputs)))
    if table.attrs.get("fps") is not None:
        print(f"{table.attrs['fps']:.1f} video frames per second")
    if config.out_dir is not None:
        skipped = table.attrs["skipped"]
        print(f"{len(table)} rows to {config.out_dir}; {skipped} files done before were skipped")
        return
    where = f" to {config.out}" if config.out else ""
    print(f"{len(table)} rows{where}")


def _import(args: argparse.Namespace) -> None:
    from aufacs.engine.published import ImportConfig
    from aufacs.engine.published_folds import import_runs

    config = config_from_args(ImportConfig, args)
    for run in import_runs(dataclasses.replace(config, weights=tuple(args.weights))):
        print(f"run folder: {run}")


def _export(args: argparse.Namespace) -> None:
    from aufacs.inference.export import ExportConfig, export_model

    path = export_model(config_from_args(ExportConfig, args))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def _study(args: argparse.Namespace) -> None:
    from aufacs.core.config import load_config
    from aufacs.report.study import StudyConfig, describe_study, run_study

    base = load_config(StudyConfig, args.config) if args.config else None
    config = config_from_args(StudyConfig, args, base=base)
    if args.plan:
        print(describe_study(config))
    else:
        run_study(config)


def _notebooks(args: argparse.Namespace) -> None:
    from aufacs.report.notebook_files import copy_notebooks

    copies = copy_notebooks(args.out, overwrite=args.overwrite)
    print(f"copied {len(copies)} notebooks to {args.out}; open them in JupyterLab")


def _notebooks_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to copy them into")
    parser.add_argument("--overwrite", action="store_true", help="replace notebooks there")


def _synth_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.data.synthetic import SynthConfig

    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty folder")
    add_config_arguments(parser, SynthConfig)


def _preview_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.data.synthetic import SynthConfig

    parser.add_argument("--out", type=Path, default=Path("docs/img/synth_grid.png"))
    parser.add_argument("--n", type=int, default=12, help="number of faces")
    add_config_arguments(parser, SynthConfig)


def _audit_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.data.prepare import PrepareConfig

    parser.add_argument("--out", type=Path, required=True, help="folder for the audit tables")
    add_config_arguments(parser, PrepareConfig)


def _prepare_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.data.prepare import PrepareConfig

    add_config_arguments(parser, PrepareConfig)


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.engine.config import TrainConfig

    parser.add_argument("--config", type=Path, help="JSON file of training settings")
    _add_offline_flag(parser)
    add_config_arguments(parser, TrainConfig)


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.analysis.evaluate import EvaluateConfig

    add_config_arguments(parser, EvaluateConfig)


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.inference.predict import PredictConfig

    parser.add_argument("inputs", nargs="+", metavar="PATH", help="images, folders or videos")
    add_config_arguments(parser, PredictConfig, exclude=("paths",))


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.engine.published import ImportConfig

    parser.add_argument(
        "weights",
        nargs="+",
        type=Path,
        metavar="WEIGHTS",
        help="JAA-Net's six .pth files or their folder, or one ME-GraphAU or aufacs weight "
        "file; with --folds, one file or snapshot folder per fold",
    )
    add_config_arguments(parser, ImportConfig, exclude=("weights",))


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.inference.export import ExportConfig

    add_config_arguments(parser, ExportConfig)


def _study_arguments(parser: argparse.ArgumentParser) -> None:
    from aufacs.report.study import StudyConfig

    parser.add_argument("--config", type=Path, help="JSON file of study settings")
    parser.add_argument(
        "--plan", action="store_true", help="print the notebooks and parameters; run nothing"
    )
    _add_offline_flag(parser)
    add_config_arguments(parser, StudyConfig)


def _add_offline_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never download ImageNet weights, use torchvision's cache only (sets "
        "AUFACS_OFFLINE=1 for this process and the notebooks it starts)",
    )


@dataclass(frozen=True)
class Subcommand:
    """One ``aufacs`` subcommand: its one-line help, the function that adds its arguments
    (importing the package module its settings live in) and the function that runs it."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], None]


SUBCOMMANDS: dict[str, Subcommand] = {
    "synth": Subcommand(
        "generate the synthetic data set in the BP4D layout", _synth_arguments, _synth
    ),
    "preview": Subcommand("draw a grid of aligned synthetic faces", _preview_arguments, _preview),
    "audit": Subcommand("audit a data set: defects, balance, leakage", _audit_arguments, _audit),
    "prepare": Subcommand(
        "audit a data set and cache its aligned faces", _prepare_arguments, _prepare
    ),
    "train": Subcommand("train a model (resumes a run found in --out)", _train_arguments, _train),
    "evaluate": Subcommand("evaluate every saved epoch of a run", _evaluate_arguments, _evaluate),
    "cross-evaluate": Subcommand(
        "evaluate a run on another data set's test subjects, over the AUs both label",
        _cross_evaluate_arguments,
        _cross_evaluate,
    ),
    "predict": Subcommand(
        "detect, align and predict AUs in images or videos", _predict_arguments, _predict
    ),
    "import": Subcommand(
        "make a run folder of published weights, to evaluate or use", _import_arguments, _import
    ),
    "export": Subcommand(
        "write a run's model as one file that predicts anywhere", _export_arguments, _export
    ),
    "study": Subcommand("run the study on the embedded default", _study_arguments, _study),
    "notebooks": Subcommand(
        "copy the workbook's notebooks into a folder, to edit them",
        _notebooks_arguments,
        _notebooks,
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``aufacs`` command. Every subcommand is listed, but only
    ``command``'s arguments are added (None: every subcommand's), so that a command imports
    only the part of the package it runs: ``aufacs synth`` starts without torch."""
    parser = argparse.ArgumentParser(prog="aufacs", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, subcommand in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=subcommand.help, description=subcommand.help)
        sub.set_defaults(handler=subcommand.handler)
        if command is None or command == name:
            subcommand.arguments(sub)
    return parser


def requested_command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (its first word), or None where it names none."""
    return argv[0] if argv and argv[0] in SUBCOMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aufacs`` command; returns the exit status."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(requested_command(argv)).parse_args(argv)
        if getattr(args, "offline", False):
            os.environ["AUFACS_OFFLINE"] = "1"
        args.handler(args)
    except AufacsError as error:
        print(f"aufacs: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aufacs: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
