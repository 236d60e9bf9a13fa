"""dcgan_lab.book.timing: chapters record their wall time; the appendix reads the table."""

from __future__ import annotations

import json

from dcgan_lab.book.timing import ChapterClock, read


def test_record_and_read(tmp_path) -> None:
    clock = ChapterClock("02_transposed_convolutions")
    seconds = clock.record("smoke", tmp_path)
    ChapterClock("01_dense_gan").record("cpu", tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    rows = read(tmp_path)
    assert [r["chapter"] for r in rows] == ["01_dense_gan", "02_transposed_convolutions"]
    assert rows[1]["profile"] == "smoke" and 0 <= rows[1]["seconds"] <= seconds + 0.1
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind
    again = ChapterClock("01_dense_gan")
    again.record("smoke", tmp_path)  # a new run replaces the chapter's record
    assert json.loads((tmp_path / "01_dense_gan.json").read_text())["profile"] == "smoke"
