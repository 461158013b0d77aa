"""A bad model file is refused at start-up, before the port opens, with a message that names
the file and says which of missing, empty, truncated, foreign or newer it is (the errors of
:func:`leanrec.models.load_model`); a running server stops gracefully."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import pytest
import torch

from leanrec.cli import main
from tests.serve.conftest import USER_OFFSET, Models, start, stop, wait_until_up


def _refusal(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["serve", str(path), "--port", "1"]) == 2  # never reaches the port
    return capsys.readouterr().err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = _refusal(tmp_path / "nothing.pt", capsys)
    assert "nothing.pt: model file not found" in message


@pytest.mark.parametrize("which", ["dense", "packed"])
def test_truncated_file(
    which: str, models: Models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = getattr(models, which).read_bytes()
    cut = tmp_path / f"cut{getattr(models, which).suffix}"
    cut.write_bytes(whole[: len(whole) // 2])
    message = _refusal(cut, capsys)
    assert f"{cut}: truncated " in message and "save or copy it again" in message
    cut.write_bytes(b"")
    assert f"{cut}: empty " in _refusal(cut, capsys)


def test_foreign_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.pt"
    notes.write_text("101 things to do\n")
    assert "not a model file: this is a text file (starts '101 things" in _refusal(notes, capsys)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)  # a torch file, but no leanrec model
    assert "not a leanrec model file: a torch file without a 'format' key" in _refusal(
        other, capsys
    )
    text = tmp_path / "notes.safetensors"
    text.write_text("user,item\n1,2\n")  # its first 8 bytes read as a 10^17-byte header
    assert f"{text}: not a " in _refusal(text, capsys)


def test_newer_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import save_file

    newer = tmp_path / "newer.pt"
    torch.save({"format": "leanrec.model/9", "state_dict": {}}, newer)
    message = _refusal(newer, capsys)
    assert "format 'leanrec.model/9', written by a newer leanrec" in message
    assert "upgrade leanrec" in message
    packed = tmp_path / "newer.safetensors"
    header = {"leanrec": json.dumps({"compressed_format": "leanrec.compressed/2"})}
    save_file({"state.x": torch.zeros(2)}, str(packed), metadata=header)
    assert "'leanrec.compressed/2', written by a newer leanrec" in _refusal(packed, capsys)


def test_sigterm_stops_the_server_gracefully(models: Models) -> None:
    server = start(models.dense)
    try:
        wait_until_up(server)
        answers: list[int] = []
        users = [USER_OFFSET + i for i in range(20)]

        def call() -> None:  # in flight while the signal arrives
            answers.append(server.post("/recommend", {"users": users * 50, "k": 5})[0])

        caller = threading.Thread(target=call)
        caller.start()
        server.process.send_signal(signal.SIGTERM)
        caller.join(timeout=60)
        # uvicorn re-raises the signal once it has shut down, so the exit is -SIGTERM
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert answers in ([200], [])  # answered, or the port had closed before it was sent
        stderr = server.process.stderr.read().decode() if server.process.stderr else ""
        assert "Traceback" not in stderr
        assert "leanrec serve: stopped (" in stderr  # the shutdown path ran to its end
    finally:
        stop(server)
