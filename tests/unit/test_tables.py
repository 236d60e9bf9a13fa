"""dcgan_lab.scoring.tables: the ablation table's verdicts, score tables, history summaries."""

from __future__ import annotations

import pytest

from dcgan_lab.scoring import tables


def _table(values: dict[str, list[float]]) -> tables.AblationTable:
    rows = [{"variant": v, "seed": i, "fid": f, "modes_covered": 10.0, "kl": 0.1,
             "confident": 0.5, "precision": 0.5, "recall": 0.5, "d_real": 0.6, "d_fake": 0.3,
             "seconds": 1.0} for v, fs in values.items() for i, f in enumerate(fs)]
    settings = {"recipe": "torch-mnist", "framework": "torch", "steps": 1, "batch_size": 2,
                "seeds": [0, 1, 2], "n_eval": 10, "dataset": "mnist"}
    return tables.AblationTable(rows, list(values), settings)


def test_compare_and_describe_only_claim_what_the_spread_allows():
    t = _table({"baseline": [10, 11, 12], "good": [5, 6, 7], "bad": [20, 21, 22],
                "same": [9, 11, 13]})
    assert t.compare("fid") == {"good": "better", "bad": "worse", "same": "within the spread"}
    text = t.describe("fid")
    assert "better beyond the spread: good (6.00 ± 1.00)" in text
    assert "worse beyond the spread: bad" in text and "1 other variant within the spread" in text
    assert "every other variant within the spread" in _table(
        {"baseline": [1, 2, 3], "x": [2, 3, 4]}).describe("fid")
    # higher is better for modes covered: a larger mean counts as better
    t2 = _table({"baseline": [1, 1, 1], "x": [2, 2, 2]})
    for r in t2.rows:
        r["modes_covered"] = r["fid"]
    assert t2.compare("modes_covered") == {"x": "better"}


def test_a_single_seed_is_never_judged():
    t = _table({"baseline": [10], "x": [1]})
    assert t.compare("fid") == {"x": "not judged (one seed)"}
    assert "no variant is judged" in t.describe("fid")


def test_ruler_position_and_score_tables():
    ruler = {"real": 1.0, "blur 1": 10.0, "noise": 100.0}
    assert tables.ruler_position(0.5, ruler).startswith("below every reference")
    assert tables.ruler_position(5.0, ruler) == "between 'real' (1.00) and 'blur 1' (10.00)"
    assert tables.ruler_position(500.0, ruler).startswith("above every reference, even 'noise'")
    st = tables.ScoreTable({"a": {"fid": 1.234, "kl": 0.5}, "b": {"fid": 2.0}})
    assert "1.23" in str(st) and "-" in str(st).splitlines()[-1] and "<td" in st._repr_html_()
    from dcgan_lab.run.history import History

    h = History()
    for i in range(10):
        h.log(step=i + 1, loss_d=float(i), d_real=1.0, d_fake=0.0, grad_g=2.0)
    means = tables.tail_means({"run": h}, frac=0.2)
    assert means["run"]["loss_d"] == pytest.approx(8.5)


def test_history_summary_counts_starved_steps():
    from dcgan_lab.run.history import History

    h = History()
    for i, df in enumerate([0.5, 0.005, 0.001, 0.2]):
        h.log(step=i + 1, loss_d=float(i), d_fake=df, grad_g=float(10 - i))
    assert tables.starved_steps(h) == 2
    h.log(step=5, loss_d=0.0, d_fake=0.0, grad_g=0.0)
    assert tables.starved_steps(h, consecutive=True) == 2  # steps 2-3 (step 5 is alone)
    h.rows.pop()
    s = tables.history_summary({"run": h})
    assert s["run"] == {"loss_d": 1.5, "d_fake": pytest.approx(0.1025), "grad_g": 8.5,
                        "starved": 2.0}
    assert "steps with D(G(z)) < 0.01" in str(s)


def test_both_tables_print_aligned_text_under_their_caption():
    st = tables.ScoreTable({"a": {"fid": 1.234}, "long name": {"fid": 22.5}}, caption="cap")
    lines = str(st).splitlines()
    assert lines[0] == "cap" and set(lines[2].replace(" ", "")) == {"-"}
    assert len({len(ln) for ln in lines[1:]}) == 1  # every row as wide as the header and rule
    assert lines[3].startswith("a ") and lines[3].endswith("1.23")  # names left, numbers right
    t = _table({"baseline": [10, 11, 12], "x": [5, 6, 7]})
    for r in t.rows:
        r["diversity"] = 1.0
    text = str(t).splitlines()
    assert text[0] == t.caption() and set(text[2].replace(" ", "")) == {"-"}
    assert len({len(ln) for ln in text[1:]}) == 1 and text[4].startswith("x ")
