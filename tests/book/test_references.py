"""The book's bibliography, cross-references, worked solutions and on-page code are wired up.

* every ``{cite}`` key in the chapters and pages is an entry of ``book/references.bib``, every
  entry is cited somewhere, and ``_config.yml`` / ``_toc.yml`` load the file and list the
  bibliography page;
* every ``{ref}`` target is a label ``(name)=`` that some page defines, every ``{doc}`` target a
  page of the book;
* every exercise of chapters 2 to 4 has a worked solution in a collapsed dropdown;
* chapter 2 writes zero insertion and the planner on the page and proves them equal to the
  package's; chapter 3 writes ``TF1BatchNormalization`` on the page and proves it equal;
* the "diagnose this run" page has its shipped traces, small enough for the repository.

Reads files only: no framework is imported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
BIB = BOOK / "references.bib"

_CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
_REF = re.compile(r"\{(?:ref|numref)\}`([^`]+)`")
_DOC = re.compile(r"\{doc\}`([^`]+)`")
_LABEL = re.compile(r"^\(([\w-]+)\)=\s*$", re.M)
_ENTRY = re.compile(r"^@(\w+)\{([^,\s]+),", re.M)


def _pages() -> dict[str, str]:
    """Page name -> its markdown text (markdown cells of notebooks, whole .md files)."""
    out = {}
    for path in sorted(BOOK.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf8"))
        out[path.stem] = "\n\n".join("".join(c["source"]) for c in nb["cells"]
                                     if c["cell_type"] == "markdown")
    for path in sorted(BOOK.glob("*.md")):
        out[path.stem] = path.read_text(encoding="utf8")
    return out


def _code(stem: str) -> list[str]:
    nb = json.loads((BOOK / f"{stem}.ipynb").read_text(encoding="utf8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _target(text: str) -> str:
    """``title <target>`` or ``target``."""
    m = re.search(r"<([^<>]+)>\s*$", text)
    return (m.group(1) if m else text).strip()


def bib_entries() -> dict[str, str]:
    return {key: kind for kind, key in _ENTRY.findall(BIB.read_text(encoding="utf8"))}


def cited_keys() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for page, text in _pages().items():
        for group in _CITE.findall(text):
            for key in group.split(","):
                found.setdefault(key.strip(), set()).add(page)
    return found


def test_every_citation_is_in_the_bib():
    missing = {k: sorted(p) for k, p in cited_keys().items() if k not in bib_entries()}
    assert not missing, f"cited but not in book/references.bib: {missing}"


def test_every_bib_entry_is_cited():
    uncited = sorted(set(bib_entries()) - set(cited_keys()))
    assert not uncited, f"entries of book/references.bib that no page cites: {uncited}"


# A citation typed by hand: "Radford et al. 2015", "Metz et al.\n(2016, ...", "(Chintala, Denton,
# Arjovsky & Mathieu, 2016)", "Heusel et al. (2017)", "Chong & Forsyth 2020", "Arjovsky and Bottou
# (2017": a name followed by a year, or a parenthesis that ends in one.
_HAND_CITATION = re.compile(
    r"\bet\s+al\.?,?\s+\(?(?:19|20)\d\d"
    r"|\b[A-Z][\w\-]+(?:\s+(?:&|and)\s+[A-Z][\w\-]+)?,?\s+\((?:19|20)\d\d\b"
    r"|\b[A-Z][\w\-]+\s+(?:&|and)\s+[A-Z][\w\-]+,?\s+(?:19|20)\d\d\b"
    r"|\([^()`]*[A-Z][\w\-]+,\s+(?:19|20)\d\d[a-z]?\)")


def hand_typed_citations(text: str) -> list[str]:
    """The author-year citations in ``text`` that are typed out instead of ``{cite}``-ed."""
    return [m.group(0) for m in _HAND_CITATION.finditer(text)]


def test_hand_typed_citations_are_found():
    for typed in ("(Chintala, Denton, Arjovsky & Mathieu,\n2016)", "Radford et al. 2015",
                  "Metz et al.\n(2016, *Unrolled*)", "Heusel et al. (2017) train",
                  "(Chong & Forsyth 2020 extrapolate", "Arjovsky and Bottou (2017, *Towards",
                  "(Nguyen\net al., 2015)", "(Radford et al., 2015, section 6.1)"):
        assert hand_typed_citations(typed), typed
    for fine in ("{cite:t}`radford2015dcgan` (Theorem 2.5)", "26,000 samples", "in 2,000 steps",
                 "epoch 2015 of 3000"):
        assert not hand_typed_citations(fine), fine


def test_no_citation_is_typed_by_hand():
    """Every author-year citation goes through ``{cite}`` (so it links to the bibliography)."""
    found = {page: hits for page, text in _pages().items()
             if page != "bibliography" and (hits := hand_typed_citations(text))}
    assert not found, f"cite these with {{cite:t}}/{{cite:p}} and a key of references.bib: {found}"


def test_bib_entries_are_complete():
    text = BIB.read_text(encoding="utf8")
    blocks = re.split(r"(?m)^(?=@)", text)
    problems = []
    for block in blocks:
        m = _ENTRY.match(block)
        if not m:
            continue
        kind, key = m.groups()
        fields = {f.lower() for f in re.findall(r"^\s*(\w+)\s*=", block, re.M)}
        need = {"author", "title", "year"}
        if kind == "book":
            need |= {"publisher", "edition"}
        if "github.com" in block:      # a repository: pinned at a commit
            if not re.search(r"github\.com/[^\s}]+/(?:blob|tree)/[0-9a-f]{40}", block):
                problems.append(f"{key}: a repository URL without a pinned 40-hex commit")
        if "arxiv.org" in block and "eprint" not in fields:
            problems.append(f"{key}: arXiv paper without an eprint (arXiv id) field")
        if missing := need - fields:
            problems.append(f"{key}: missing {sorted(missing)}")
    assert not problems, problems


def test_config_loads_the_bib_and_toc_lists_the_bibliography():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    assert "sphinxcontrib.bibtex" in config["sphinx"]["extra_extensions"]
    toc = (ROOT / "_toc.yml").read_text(encoding="utf8")
    for page in ("book/bibliography", "book/appendix_diagnose"):
        assert f"file: {page}\n" in toc, page
    assert "{bibliography}" in (BOOK / "bibliography.md").read_text(encoding="utf8")


def test_cross_references_resolve():
    pages = _pages()
    labels = {label for text in pages.values() for label in _LABEL.findall(text)}
    bad = [(page, ref) for page, text in pages.items() for ref in _REF.findall(text)
           if _target(ref) not in labels]
    bad += [(page, doc) for page, text in pages.items() for doc in _DOC.findall(text)
            if _target(doc) not in pages]
    assert not bad, f"{{ref}}/{{doc}} targets that no page defines: {bad}"


def test_chapters_link_each_other():
    pages = _pages()
    for stem, needs in {"01_dense_gan": {"ch2-transposed-convolutions", "ch3-keras-dcgans",
                                         "ch4-pytorch-dcgans", "ch5-toy", "ch5-ganhacks"},
                        "02_transposed_convolutions": {"dcgan-guidelines", "ch2-twin-proof"},
                        "03_keras_dcgans": {"dcgan-guidelines", "ch4-pytorch-dcgans"},
                        "04_pytorch_dcgans": {"dcgan-guidelines", "ch3-keras-dcgans"},
                        "05_failure_modes": {"ch1-toy", "ch3-keras-dcgans", "ch4-training-loop",
                                             "ch5-d-wins", "ch5-ganhacks"}}.items():
        refs = {_target(r) for r in _REF.findall(pages[stem])}
        assert needs <= refs, (stem, sorted(needs - refs))


@pytest.mark.parametrize("stem, prefix", [("01_dense_gan", "ch1-"), ("05_failure_modes", "ch5-")])
def test_every_main_section_has_a_label(stem, prefix):
    """Chapters 1 and 5: the title and every numbered section carry a ``(chN-...)=`` target."""
    text = _pages()[stem]
    lines = text.split("\n")
    unlabelled = [line for i, line in enumerate(lines)
                  if re.match(r"#\s|##\s+\d+\.\s|##\s+First", line)
                  and not (i and re.fullmatch(rf"\({prefix}[\w-]+\)=", lines[i - 1].strip()))]
    assert not unlabelled, (stem, unlabelled)


@pytest.mark.parametrize("stem", ["02_transposed_convolutions", "03_keras_dcgans",
                                  "04_pytorch_dcgans"])
def test_every_exercise_has_a_worked_solution(stem):
    text = _pages()[stem]
    exercises = text[text.index("## Exercises"):]
    exercises = exercises[:exercises.index("## Sources")] if "## Sources" in exercises else exercises
    numbered = re.findall(r"(?m)^(\d+)\. \*\*", exercises)
    solutions = re.findall(r"(?m)^\s*:::\{dropdown\} Solution\s*$", exercises)
    assert numbered and len(solutions) == len(numbered), (stem, len(numbered), len(solutions))
    assert "Hint" not in re.findall(r"\{dropdown\} (\w+)", exercises)


def test_chapter_2_writes_and_proves_its_arithmetic():
    code = _code("02_transposed_convolutions")
    defined = "\n".join(code)
    for fn in ("def zero_insert(", "def transposed_conv_by_zero_insertion(", "def padding_for(",
               "def plan(", "def conv_output_size(", "def conv_transpose_output_size("):
        assert fn in defined, fn
    proof = [c for c in code if "ar.transposed_conv_by_zero_insertion(" in c
             and "ar.plan_generator(" in c and "torch_convT(" in c]
    assert len(proof) == 1, "the proof cell (page against package and torch) is missing"
    assert "print(" in proof[0] and 'glue("twin-zi-pkg"' in proof[0]
    # the comparison with the real layers uses the page's function, not the package's
    layers = [c for c in code if "def torch_convT(" in c]
    assert layers and "ours = transposed_conv_by_zero_insertion(" in layers[0]


def test_chapter_3_writes_and_proves_tf1_batchnormalization():
    code = _code("03_keras_dcgans")
    joined = "\n".join(code)
    assert "class TF1BatchNormalization(layers.BatchNormalization):" in joined
    assert "from dcgan_lab.keras.models import TF1BatchNormalization" not in joined
    proof = [c for c in code if "lab_keras_models.TF1BatchNormalization(" in c]
    assert len(proof) == 1 and 'glue("tf1bn-twin-diff"' in proof[0]


def test_guidelines_come_before_chapter_3_trains():
    ch2 = _pages()["02_transposed_convolutions"]
    assert "(dcgan-guidelines)=" in ch2
    for words in ("strided", "BatchNorm", "fully connected", "ReLU", "tanh", "LeakyReLU"):
        assert words in ch2[ch2.index("(dcgan-guidelines)="):], words


@pytest.mark.parametrize("run", ["run-a", "run-b", "run-c"])
def test_diagnose_runs_are_shipped_and_small(run):
    folder = BOOK / "_static" / "diagnose" / run
    png, csv = folder / "grid.png", folder / "history.csv"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size < 200_000
    assert csv.stat().st_size < 100_000
    header = csv.read_text(encoding="utf8").splitlines()[0].split(",")
    assert {"step", "loss_d", "loss_g", "d_real", "d_fake"} <= set(header)
    manifest = json.loads((BOOK / "_static" / "diagnose" / "runs.json").read_text())
    assert run in manifest


def test_diagnose_page_asks_and_answers():
    text = _pages()["appendix_diagnose"]
    assert text.count(":::{dropdown} Answer") == 3
    code = "\n".join(_code("appendix_diagnose"))
    for run in ("run-a", "run-b", "run-c"):
        assert f'"{run}"' in code
