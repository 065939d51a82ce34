"""ImageNet weights: torchvision's cache first, else a download with torch.hub's hash check.

Nothing here reaches the internet: a tiny architecture is registered whose weight file a
loopback HTTP server serves from the test's folder, ``AUFACS_WEIGHTS_URL`` points at that
server, and torch's hub folder is a temporary one.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from aufacs.cli import build_parser, main
from aufacs.core.errors import AufacsError
from aufacs.models import backbones
from aufacs.models.backbones import (
    Architecture,
    downloads_disabled,
    imagenet_url,
    imagenet_weight_file,
    torchvision_backbone,
)


class WeightServer:
    """A loopback HTTP server of the files in ``folder`` that counts the requests it gets."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[str] = []
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args) -> None:
                pass

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def tiny_model() -> nn.Module:
    return nn.Linear(3, 2)


def save_served_weights(folder: Path, name: str | None = None) -> tuple[str, dict]:
    """Write random tiny weights to ``folder`` as ``tiny-<8 hex of sha256>.pth`` (or ``name``);
    returns the file name and the weights."""
    folder.mkdir(parents=True, exist_ok=True)
    state = tiny_model().state_dict()
    scratch = folder / "scratch.pth"
    torch.save(state, scratch)
    name = name or f"tiny-{hashlib.sha256(scratch.read_bytes()).hexdigest()[:8]}.pth"
    scratch.rename(folder / name)
    return name, state


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """torchvision's checkpoint folder, empty, inside the test's folder; downloads allowed."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("AUFACS_OFFLINE", raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def server(tmp_path, monkeypatch) -> WeightServer:
    """The loopback server of ``tmp_path/served``, named by ``AUFACS_WEIGHTS_URL``."""
    (tmp_path / "served").mkdir()
    running = WeightServer(tmp_path / "served")
    monkeypatch.setenv("AUFACS_WEIGHTS_URL", running.url)
    yield running
    running.stop()


def register_tiny(monkeypatch, name: str) -> None:
    monkeypatch.setitem(backbones._ARCHITECTURES, "tiny", Architecture(tiny_model, lambda: (name,)))


def assert_weights_equal(model: nn.Module, state: dict) -> None:
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value)


def test_missing_weights_download_into_the_cache_and_load(cache, server, monkeypatch):
    name, state = save_served_weights(server.folder)
    register_tiny(monkeypatch, name)
    model = torchvision_backbone("tiny", "imagenet")
    assert (cache / name).is_file()
    assert server.requests == [f"/{name}"]
    assert_weights_equal(model, state)


def test_cached_weights_load_without_a_request(cache, server, monkeypatch):
    name, state = save_served_weights(cache)
    register_tiny(monkeypatch, name)
    assert_weights_equal(torchvision_backbone("tiny", "imagenet"), state)
    assert server.requests == []


def test_a_second_load_reads_the_cache(cache, server, monkeypatch):
    name, _ = save_served_weights(server.folder)
    register_tiny(monkeypatch, name)
    torchvision_backbone("tiny", "imagenet")
    torchvision_backbone("tiny", "imagenet")
    assert len(server.requests) == 1


def test_a_hash_mismatch_is_refused_and_leaves_nothing_in_the_cache(cache, server, monkeypatch):
    name, _ = save_served_weights(server.folder, "tiny-00000000.pth")
    register_tiny(monkeypatch, name)
    with pytest.raises(AufacsError, match="hash.*pretrained=None"):
        torchvision_backbone("tiny", "imagenet")
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("failure", ["404", "refused"])
def test_a_failed_download_names_the_url_why_and_what_to_do(cache, server, monkeypatch, failure):
    register_tiny(monkeypatch, "tiny-12345678.pth")
    if failure == "refused":
        server.stop()
    with pytest.raises(AufacsError, match=failure) as error:
        torchvision_backbone("tiny", "imagenet")
    assert f"{server.url}tiny-12345678.pth" in str(error.value)
    assert "AUFACS_OFFLINE=1" in str(error.value)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("switch", ["environment", "keyword"])
def test_offline_with_an_empty_cache_says_where_to_put_the_file(cache, server, monkeypatch, switch):
    register_tiny(monkeypatch, "tiny-12345678.pth")
    if switch == "environment":
        monkeypatch.setenv("AUFACS_OFFLINE", "1")
    with pytest.raises(AufacsError, match="not in torchvision's cache"):
        torchvision_backbone("tiny", "imagenet", offline=True if switch == "keyword" else None)
    assert server.requests == []


def test_the_keyword_overrides_the_environment(cache, server, monkeypatch):
    name, _ = save_served_weights(server.folder)
    register_tiny(monkeypatch, name)
    monkeypatch.setenv("AUFACS_OFFLINE", "1")
    assert imagenet_weight_file("tiny", offline=False) == cache / name


def test_offline_loads_cached_weights(cache, monkeypatch):
    name, state = save_served_weights(cache)
    register_tiny(monkeypatch, name)
    monkeypatch.setenv("AUFACS_OFFLINE", "1")
    assert_weights_equal(torchvision_backbone("tiny", "imagenet"), state)


@pytest.mark.parametrize(
    ("arch", "weights"),
    [
        ("vgg19", torchvision.models.VGG19_Weights.IMAGENET1K_V1),
        ("resnet50", torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
    ],
)
def test_real_backbones_download_torchvisions_imagenet1k_v1_file(arch, weights, monkeypatch):
    monkeypatch.delenv("AUFACS_WEIGHTS_URL", raising=False)
    assert imagenet_url(arch) == weights.url


def test_the_study_flag_offline_turns_downloads_off_for_the_process(monkeypatch):
    monkeypatch.delenv("AUFACS_OFFLINE")
    assert main(["study", "--offline", "--plan", "--device", "cpu"]) == 0
    assert downloads_disabled()


@pytest.mark.parametrize("command", ["train", "study"])
def test_train_and_study_take_the_offline_flag(command):
    parser = build_parser()
    assert parser.parse_args([command, "--offline"]).offline
    assert not parser.parse_args([command]).offline
