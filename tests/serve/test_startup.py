"""A bad model file is refused at start-up, before the port opens, with a message that says
which of missing, truncated, foreign or newer it is; a running server stops gracefully."""

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
    assert "nothing.pt" in message and "not found (missing file)" in message


@pytest.mark.parametrize("which", ["dense", "packed"])
def test_truncated_file(
    which: str, models: Models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = getattr(models, which).read_bytes()
    cut = tmp_path / f"cut{getattr(models, which).suffix}"
    cut.write_bytes(whole[: len(whole) // 2])
    message = _refusal(cut, capsys)
    assert str(cut) in message and "truncated model file" in message
    cut.write_bytes(b"")
    assert "truncated model file (0 bytes)" in _refusal(cut, capsys)


def test_foreign_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.pt"
    notes.write_text("101 things to do\n")
    assert "not a leanrec model file (neither a torch archive" in _refusal(notes, capsys)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)  # a torch file, but no leanrec model
    assert "not a leanrec model file" in _refusal(other, capsys)
    text = tmp_path / "notes.safetensors"
    text.write_text("user,item\n1,2\n")  # its first 8 bytes read as a 10^17-byte header
    assert "not a leanrec model file" in _refusal(text, capsys)


def test_newer_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import save_file

    newer = tmp_path / "newer.pt"
    torch.save({"format": "leanrec.model/9", "state_dict": {}}, newer)
    message = _refusal(newer, capsys)
    assert "newer leanrec (format 'leanrec.model/9'; this leanrec reads up to leanrec.model/1)" in (
        message
    )
    packed = tmp_path / "newer.safetensors"
    header = {"leanrec": json.dumps({"compressed_format": "leanrec.compressed/2"})}
    save_file({"state.x": torch.zeros(2)}, str(packed), metadata=header)
    assert "written by a newer leanrec (format 'leanrec.compressed/2'" in _refusal(packed, capsys)


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
