"""Bad model files and bad numbers give one clear message naming the file or the option:
truncated, foreign, empty and newer-version model files through every loader, and trainer and
model configs that refuse impossible numbers at construction."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from leanrec.api import DataFile, TrainConfig, train
from leanrec.cli import main
from leanrec.data.errors import DataError
from leanrec.model_files import check_format_version, describe_foreign_bytes, read_torch_file
from leanrec.models import load_model
from leanrec.models.ctr.registry import load_ctr_model
from leanrec.models.lightgcn import LightGCNConfig
from leanrec.models.registry import load_ranking_model
from leanrec.models.seq.sasrec import SASRecConfig
from leanrec.models.stream_io import load_stream_model
from leanrec.search.embedding_size import CIESSConfig
from leanrec.search.sketch.config import SketchConfig
from leanrec.train import TrainerConfig
from leanrec.train.checkpoint import load_checkpoint
from leanrec.train.sequential import SequentialTrainerConfig

FAST = TrainerConfig(max_epochs=1, learning_rate=0.01, batch_size=4096, progress=False)
RATINGS = Path(__file__).resolve().parent / "examples" / "ratings.csv"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    data = DataFile(str(RATINGS), user_col="userId", item_col="movieId")  # users 1..60
    run = train(
        TrainConfig(dataset=data, model="mf", trainer=FAST, model_options={"embedding_dim": 8})
    )
    return run.save(folder / "model.pt")


def _truncated(model_file: Path, folder: Path, keep: int = 2000) -> Path:
    path = folder / "trunc.pt"
    path.write_bytes(model_file.read_bytes()[:keep])
    return path


# ---------------------------------------------------------------- the four failures, by command
def test_recommend_on_truncated_model_file_says_truncated(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _truncated(model_file, tmp_path)
    assert main(["recommend", "--model", str(path), "--users", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"leanrec recommend: error: {path}: truncated model file")
    assert "2,000 bytes" in err and "Traceback" not in err and "Pytorch" not in err


def test_recommend_on_text_file_says_it_is_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.pt"
    path.write_text("hello, these are my notes\nsecond line\n")
    assert main(["recommend", "--model", str(path), "--users", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"leanrec recommend: error: {path}: not a model file: this is a text file "
        "(starts 'hello, these are my notes'), not a file leanrec saved"
    )


def test_train_with_batch_size_zero_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "mf", "--batch_size", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "leanrec train: error: batch_size must be at least 1, got 0"
    )


def test_recommend_unknown_user_shows_the_plain_id(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recommend", "--model", str(model_file), "--users", "999999"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "leanrec recommend: error: unknown user ID 999999 (not among the 60 known user IDs)"
    )
    assert "np.int64" not in err


# ---------------------------------------------------------------- every loader, every kind
@pytest.mark.parametrize(
    "loader",
    [load_model, load_ranking_model, load_ctr_model, load_stream_model, load_checkpoint],
    ids=["load_model", "load_ranking_model", "load_ctr_model", "load_stream_model", "resume"],
)
def test_every_loader_refuses_truncated_and_foreign_files(
    loader: object, model_file: Path, tmp_path: Path
) -> None:
    assert callable(loader)
    truncated = _truncated(model_file, tmp_path, keep=len(model_file.read_bytes()) - 30)
    with pytest.raises(DataError, match=r"trunc\.pt: truncated .*before its index"):
        loader(truncated)
    html = tmp_path / "page.pt"
    html.write_text("<!doctype html><html>")
    with pytest.raises(DataError, match=r"page\.pt: not a .*text file \(starts '<!doctype html>"):
        loader(html)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.pt: empty .*\(0 bytes\)"):
        loader(empty)
    with pytest.raises(DataError, match="not found"):
        loader(tmp_path / "absent.pt")


def test_compress_and_recommend_refuse_bad_files(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _truncated(model_file, tmp_path)
    assert main(["compress", "--model", str(path)]) == 2
    assert "truncated model file" in capsys.readouterr().err
    packed = tmp_path / "model.safetensors"
    assert main(["compress", "--model", str(model_file), "--out", str(packed)]) == 0
    capsys.readouterr()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(packed.read_bytes()[:-100])
    size = len(packed.read_bytes())
    with pytest.raises(
        DataError,
        match=rf"truncated compressed model file: its tensors need "
        rf"{size:,} bytes, the file has {size - 100:,}",
    ):
        load_model(cut)
    text = tmp_path / "text.safetensors"
    text.write_text("not tensors at all")
    with pytest.raises(DataError, match="not a compressed model file: this is a text file"):
        load_model(text)
    # safetensors keeps no checksum: a weight read back as NaN is refused by name
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(packed), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    name = next(k for k, v in tensors.items() if k.startswith("state.") and v.is_floating_point())
    tensors[name].view(-1)[0] = float("nan")
    nan_file = tmp_path / "nan.safetensors"
    save_file(tensors, str(nan_file), metadata=metadata)
    with pytest.raises(DataError, match=rf"damaged compressed model: {name[6:]} holds NaN"):
        load_model(nan_file)


def test_newer_format_and_damaged_contents(model_file: Path, tmp_path: Path) -> None:
    state = torch.load(model_file, weights_only=True)
    newer = tmp_path / "newer.pt"
    torch.save({**state, "format": "leanrec.model/2"}, newer)
    with pytest.raises(
        DataError,
        match=r"format 'leanrec.model/2', written by a newer leanrec; "
        r"this leanrec reads 'leanrec.model/1'; upgrade leanrec",
    ):
        load_model(newer)
    damaged = tmp_path / "damaged.pt"
    torch.save({k: v for k, v in state.items() if k != "state_dict"}, damaged)
    with pytest.raises(
        DataError,
        match=r"damaged\.pt: damaged or incompatible model file: "
        r"KeyError 'state_dict'",
    ):
        load_model(damaged)
    no_dict = tmp_path / "list.pt"
    torch.save([1, 2, 3], no_dict)
    with pytest.raises(DataError, match="it holds a list, not a leanrec checkpoint dict"):
        load_model(no_dict)
    checkpoint = tmp_path / "train_state.pt"
    torch.save({"epoch": 3, "model": {}}, checkpoint)
    with pytest.raises(DataError, match="a torch file without a 'format' key"):
        load_model(checkpoint)


def test_format_versions_and_foreign_bytes() -> None:
    check_format_version("leanrec.model/1", ["leanrec.model/1"], "m.pt")  # readable: no error
    with pytest.raises(DataError, match="written by another leanrec version"):
        check_format_version("leanrec-next-item-v0", ["leanrec-next-item-v1"], "m.pt")
    with pytest.raises(DataError, match=r"not a leanrec model file \(format 'keras'\)"):
        check_format_version("keras", ["leanrec.model/1"], "m.pt")
    assert describe_foreign_bytes(b"\x89HDF\r\n") == "an HDF5 file (Keras/h5py)"
    assert describe_foreign_bytes(b"\x00\x01\x02\xff\xfe") == (
        "an unknown binary format (first bytes 00 01 02 ff fe)"
    )


def test_read_torch_file_returns_the_saved_dict(model_file: Path) -> None:
    assert read_torch_file(model_file)["model"] == "mf"


# ---------------------------------------------------------------- configs refuse bad numbers
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TrainerConfig(batch_size=0), "batch_size must be at least 1, got 0"),
        (lambda: TrainerConfig(max_epochs=0), "max_epochs must be at least 1, got 0"),
        (lambda: TrainerConfig(ks=[10, 0]), "ks must be at least 1, got 0"),
        (lambda: TrainerConfig(learning_rate=-0.1), "learning_rate must be at least 0, got -0.1"),
        (lambda: TrainerConfig(lr_decay=0.0), "lr_decay must be positive, got 0.0"),
        (lambda: TrainerConfig(lr_decay=1.5), "lr_decay must be at most 1"),
        (lambda: SequentialTrainerConfig(batch_size=-1), "batch_size must be at least 1, got -1"),
        (lambda: SequentialTrainerConfig(ks=(0,)), "ks must be at least 1, got 0"),
        (lambda: LightGCNConfig(embedding_dim=0), "embedding_dim must be at least 1, got 0"),
        (lambda: SASRecConfig(num_heads=0), "num_heads must be at least 1, got 0"),
        (lambda: SASRecConfig(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
        (lambda: SketchConfig(epochs=0), "epochs must be >= 1, got 0"),
        (lambda: SketchConfig(batch_users=0), "batch_users must be >= 1, got 0"),
        (lambda: SketchConfig(learning_rate=-1e-3), "learning_rate must be at least 0"),
        (
            lambda: SketchConfig(queue_policy_learning_rate=-1.0),
            "queue_policy_learning_rate must be at least 0",
        ),
        (lambda: SketchConfig(num_threads=-1), "num_threads must be >= 0"),
        (
            lambda: CIESSConfig(target_sparsities=(0.9, 1.5)),
            r"target_sparsities must be one or more values in \[0, 1\), got \[0.9, 1.5\]",
        ),
        (lambda: CIESSConfig(target_sparsities=()), "target_sparsities must be one or more"),
    ],
)
def test_configs_refuse_impossible_numbers(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=message):
        build()


def test_recommend_refuses_bad_k_and_index(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recommend", "--model", str(model_file), "--users", "1", "--k", "0"]) == 2
    assert "--k must be at least 1, got 0" in capsys.readouterr().err
    args = ["recommend", "--model", str(model_file), "--users", "60", "--indices"]
    assert main(args) == 2
    assert "user index 60 out of range: the model has users 0..59" in capsys.readouterr().err
    assert main(["recommend", "--model", str(model_file), "--users", "x1"]) == 2
    assert "user ID 'x1' is not an integer" in capsys.readouterr().err


def test_a_changed_byte_in_a_saved_weight_is_refused(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """torch does not check its archive's CRC-32s: a flipped bit would load as a wrong weight
    (here NaN scores written out as JSON); every member's checksum is checked instead."""
    import struct
    import zipfile

    with zipfile.ZipFile(model_file) as archive:
        member = next(i for i in archive.infolist() if i.filename.endswith("/data/0"))
    raw = bytearray(model_file.read_bytes())
    header = member.header_offset  # the local header's name and extra lengths, then the data
    name_length, extra_length = struct.unpack("<HH", raw[header + 26 : header + 30])
    data_start = header + 30 + name_length + extra_length
    raw[data_start + 3] ^= 0x40  # an exponent bit of the first float
    damaged = tmp_path / "flipped.pt"
    damaged.write_bytes(bytes(raw))
    assert main(["recommend", "--model", str(damaged), "--users", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{damaged}: damaged model file: {member.filename} fails its checksum" in err
    with pytest.raises(DataError, match="fails its checksum"):
        load_checkpoint(damaged)
    # torch may save without checksums (every CRC 0): such a file is read as before
    unchecked = tmp_path / "no_crc.pt"
    torch.serialization.set_crc32_options(False)
    try:
        torch.save(torch.load(model_file, weights_only=True), unchecked)
    finally:
        torch.serialization.set_crc32_options(True)
    with zipfile.ZipFile(unchecked) as archive:
        assert {i.CRC for i in archive.infolist()} == {0}
    assert read_torch_file(unchecked)["format"] == read_torch_file(model_file)["format"]


def test_recommend_lists_only_unseen_items_as_valid_json(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = load_model(model_file)
    n_items = loaded.model.n_items
    assert main(["recommend", "--model", str(model_file), "--users", "1", "--k", str(n_items)]) == 0
    out = capsys.readouterr().out

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    (answer,) = json.loads(out, parse_constant=refuse)
    assert loaded.user_vocab is not None and loaded.item_vocab is not None
    user = int(loaded.user_vocab.to_index([1])[0])
    model = loaded.model
    seen_index = model.seen_indices[model.seen_indptr[user] : model.seen_indptr[user + 1]]
    seen = set(loaded.item_vocab.to_raw(seen_index.numpy()).tolist())  # its training items
    assert 0 < len(seen) < len(set(pd.read_csv(RATINGS).query("userId == 1").movieId))
    assert len(answer["items"]) == n_items - len(seen)  # every unseen item, no seen one
    assert not seen & set(answer["items"])
    assert answer["scores"] == sorted(answer["scores"], reverse=True)


def test_command_line_names_bad_settings_without_a_traceback(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recommend", "--model", str(model_file), "--users", "x1"]) == 2
    assert "IDs are integers (such as 1, 2, 3)" in capsys.readouterr().err
    assert main(["serve", str(model_file), "--host", "127.0.0.1", "--port", "99999"]) == 2
    assert "--port must be in 1..65535, got 99999" in capsys.readouterr().err
    a_file = tmp_path / "taken.csv"
    a_file.write_text("x\n")
    args = ["experiment", "sketch", "--data", str(RATINGS), "--out", str(a_file)]
    assert main(args) == 2
    assert f"--out {a_file} is a file; give a directory" in capsys.readouterr().err


def test_a_diverging_training_is_named_with_the_setting_to_lower(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--data", str(RATINGS), "--user-col", "userId", "--item-col", "movieId",
            "--model", "mf", "--epochs", "3", "--lr", "1e30", "--l2", "1e30",
            "--runs", str(tmp_path)]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("leanrec train: error: ")
    assert "became nan" in last.lower() and "smaller learning" in last.replace("_", " ")
