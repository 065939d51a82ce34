"""aufacs as a user installs it: a wheel built from this checkout, installed into a fresh
virtual environment whose other packages come from the test environment."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

from conftest import REPO_ROOT

#: What a wheel is built from.
SOURCES = ("pyproject.toml", "README.md", "aufacs", "notebooks")
#: What a checkout may hold beside its sources: byte code, hidden files, kernel sockets.
LEFT_BEHIND = shutil.ignore_patterns("__pycache__", ".*", "kernel-*")
#: pip of the test environment, quiet.
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


def install_wheel(folder: Path) -> Path:
    """Build aufacs's wheel from a copy of the checkout and install it, without dependencies,
    into a new virtual environment in ``folder``; returns that environment's ``bin`` folder.
    A ``.pth`` file lends it the test environment's packages (torch, papermill, ...) and
    ``JUPYTER_PATH`` their Jupyter files (nbconvert's templates, the kernel spec)."""
    source = folder / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=LEFT_BEHIND)
        else:
            shutil.copyfile(REPO_ROOT / name, source / name)
    wheels = folder / "wheels"
    build = ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), f"{source}/"]
    subprocess.run([*PIP, *build], check=True, capture_output=True)
    environment = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", environment], check=True)
    python = environment / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "test_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    wheel = next(wheels.glob("aufacs-*.whl"))
    pip_install(environment / "bin", wheel)
    return environment / "bin"


def pip_install(bin_folder: Path, target: Path, *flags: str) -> None:
    """Install ``target`` (a wheel or a project folder) into the environment of
    ``bin_folder``, without its dependencies and without a package index."""
    where = ["--python", str(bin_folder / "python")]
    install = ["install", "--no-deps", "--no-index", *flags, str(target)]
    subprocess.run([*PIP, *where, *install], check=True, capture_output=True)


def jupyter_path() -> str:
    """The test environment's Jupyter data folder, for ``JUPYTER_PATH``."""
    return str(Path(sysconfig.get_path("data")) / "share" / "jupyter")
