"""No outcome typed by hand: numbers in the chapters' prose are constants, never a run's result.

A number that a run produces (a loss, a share of images, a count of classes, a time) must reach
the prose through ``myst_nb.glue`` in a code cell and ``{glue:text}`name``` in the markdown, so
that the page always shows what its own build measured. This test scans every markdown cell of
every chapter, outside code fences and directives, math, inline code, glue roles and links, for
numbers, and fails on any number that is not in the allow-list of constants below, naming the
chapter, the cell (its index in the notebook's cell list) and the number.

A number the scan finds is either a constant (add it to the list with the reason, in the chapter's
set when only one chapter uses it) or an outcome (glue it from the cell that measures it). Small
integers (0 to 12: section, exercise, hack and figure numbers, kernel sizes, strides, counts),
years and shapes written like ``28x28x1`` are allowed everywhere, so a hand-typed "9 of the 10
digits" is *not* caught: this test is a net for measured values, not a proof.
"""

import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[2] / "book"
CHAPTERS = sorted(p.stem for p in BOOK.glob("*.ipynb"))

# Constants any chapter may state. Sizes: MNIST's 28x28 = 784 pixels and its halvings, the
# noise size 100, layer widths and batch sizes (powers of two). Hyperparameters as the sources
# give them: Adam's lr 0.0002 and betas, LeakyReLU slopes, dropout rates, BatchNorm momenta, the
# N(0, 0.02) init, smoothing and label values (0.9 one-sided, 0.95/0.05 Keras' two-sided,
# ganhacks' 0.7-1.2 and 0.0-0.3), flip probabilities (0.05, 5%), the classifier's confidence
# threshold 0.9 and its 1% class threshold.
ALLOWED = {
    "14", "16", "28", "32", "64", "100", "128", "256", "512", "784", "1024",
    "0.0002", "0.5", "0.9", "0.99", "0.999", "0.01", "0.2", "0.3", "0.25", "0.8", "0.02",
    "0.0", "0.05", "0.1", "0.7", "0.95", "1.2", "1%", "5%",
}

# Constants one chapter states, each with where it comes from.
PER_CHAPTER = {
    "01_dense_gan": {
        "2.5",     # Arjovsky & Bottou (2017), Theorem 2.5
        "1.386",   # log 4, the equilibrium value of L_D
        "1.6",     # million weights of Linear(64*64*3, 128), printed by the cell above it
        "20,000",  # GANs in Action's iterations
        "25", "95%",  # the toy grid's 25 Gaussians; the bootstrap interval's level
    },
    "02_transposed_convolutions": {
        "0.001",   # Radford et al. (2015), section 4: Adam's suggested lr that was too high
        "13", "15", "20", "24", "25", "48", "50",  # sizes in the worked exercise solutions
    },
    "03_keras_dcgans": {
        "13",      # Bernico's chapter 13
        "2.0",     # TensorFlow 2.0
        "1.6", "12,544",           # GiA generator: 1.6 million parameters, 100 x 12,544 weights
        "2.303",   # log 10, the KL of a one-digit generator
        "100%",    # a one-digit generator's confident share, as an example
        "50%", "1,000",  # the cpu target (benchmarks/quality_cpu.md) and its sample size
        "12,000",  # digits in the package's embedded MNIST sample
        "3,781",   # photos in the full clothing64 set
        "384", "94,721", "392,321",  # exercise arithmetic on BatchNorm parameter counts
        "600",     # exercise: continue a run to 600 steps
        "6.1",     # DCGAN paper, section 6.1
    },
    "04_pytorch_dcgans": {
        "18.9", "1.6", "13.1", "25",  # paper-lsun64 G: million parameters, 1024 * 512 * 25 weights
        "202,599", "8,000",           # CelebA's faces; the tutorial's 5 epochs in steps of 128
        "500",     # exercise: continue a run to 500 steps
        "6.1",     # DCGAN paper, section 6.1
        "17",      # ganhacks #17 (dropout in G), in an exercise's solution
    },
    "05_failure_modes": {
        "17",      # ganhacks #17
        "1000",    # Stacked MNIST's modes
        "26,000",  # samples per Stacked MNIST evaluation in the literature
        "250", "4000",             # sample sizes of the FD-bias experiment
        "50",      # "an FD of 50 means nothing on its own"
        "95%",     # the level of the toy section's bootstrap intervals
    },
    "06_stabilisers": {
        "25", "95%",  # the toy grid's 25 Gaussians; the bootstrap interval's level
    },
    "07_what_d_learned": {
        "82.8%",   # the DCGAN paper's CIFAR-10 accuracy from D's features (section 5.1)
        "5.1", "6.1", "6.3",       # sections of the DCGAN paper
        "300", "1000",             # label counts an exercise asks for
    },
    "appendix_speed": {
        "0.06",    # the distributed test's tolerance, set from measurements
    },
}

_FENCE = re.compile(r"^(`{3,}|:{3,}).*?^\1\s*$", re.S | re.M)   # code blocks and directives
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
_CODE = re.compile(r"\{[\w:-]+\}`[^`]*`|`[^`\n]*`")            # glue roles, inline code
_LINK = re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://\S+|(?:arXiv|doi):\S+")
_SHAPE = re.compile(r"(?<![\w.])\d+(?:[x×]\d+)+(?![\w.])")  # 28x28x1, 4x4: architecture
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?:\s?%)?")
_ALWAYS = re.compile(r"(?:19|20)\d\d|\d|1[0-2]")                 # years, 0 to 12


def prose(markdown: str) -> str:
    """The markdown with code, math, glue roles, links and shapes blanked out."""
    for pattern in (_FENCE, _MATH, _CODE, _LINK, _SHAPE):
        markdown = pattern.sub(" ", markdown)
    return markdown


def hand_typed_numbers(notebook: dict, allowed: set[str]) -> list[tuple[int, str, str]]:
    """(cell index, number, context) for each number in the prose that ``allowed`` lacks."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = prose("".join(cell["source"]))
        for match in _NUMBER.finditer(text):
            number = match.group().replace(" ", "")
            if _ALWAYS.fullmatch(number) or number in allowed:
                continue
            context = " ".join(text[max(0, match.start() - 50):match.end() + 30].split())
            found.append((index, number, context))
    return found


def load(chapter: str) -> dict:
    return json.loads((BOOK / f"{chapter}.ipynb").read_text(encoding="utf-8"))


def check(chapter: str, notebook: dict, allowed: set[str]) -> None:
    found = hand_typed_numbers(notebook, allowed)
    assert not found, (
        "numbers typed by hand in markdown (glue them, or add a constant to the allow-list):\n"
        + "\n".join(f"book/{chapter}.ipynb, cell {i}: {n!r} in '...{ctx}...'"
                    for i, n, ctx in found))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_prose_has_no_hand_typed_numbers(chapter):
    check(chapter, load(chapter), ALLOWED | PER_CHAPTER.get(chapter, set()))


@pytest.mark.parametrize("chapter", sorted(PER_CHAPTER))
def test_chapter_allow_list_has_no_stale_entries(chapter):
    """Each chapter's own constants still occur in its prose, so the list stays small."""
    text = " ".join(prose("".join(c["source"])) for c in load(chapter)["cells"]
                    if c["cell_type"] == "markdown")
    present = {m.group().replace(" ", "") for m in _NUMBER.finditer(text)}
    assert not PER_CHAPTER[chapter] - present, sorted(PER_CHAPTER[chapter] - present)


def _fake_notebook(*markdown: str) -> dict:
    return {"cells": [{"cell_type": "code", "source": ["print(87.3)"]}]
            + [{"cell_type": "markdown", "source": [m]} for m in markdown]}


def test_scanner_catches_a_planted_result():
    nb = _fake_notebook("## 2. Results\n", "After training, the run reached 87.3 % accuracy.\n")
    expected = r"book/fake\.ipynb, cell 2: '87\.3%' in .*the run reached 87\.3 % accuracy"
    with pytest.raises(AssertionError, match=expected):
        check("fake", nb, ALLOWED)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_result_planted_in_a_real_chapter_fails_it(chapter):
    """The real chapter with its real allow-list, plus one hand-typed outcome in its last
    markdown cell (in memory): the check must fail on exactly that number."""
    nb = load(chapter)
    last = max(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown")
    nb["cells"][last]["source"] = ["".join(nb["cells"][last]["source"])
                                   + "\n\nThe baseline reached 73.4 % confident samples.\n"]
    allowed = ALLOWED | PER_CHAPTER.get(chapter, set())
    assert [(i, n) for i, n, _ in hand_typed_numbers(nb, allowed)] == [(last, "73.4%")]
    with pytest.raises(AssertionError, match=r"73\.4%"):
        check(chapter, nb, allowed)


def test_scanner_skips_glue_math_code_links_and_constants():
    nb = _fake_notebook(
        "The run reached {glue:text}`acc:.1%` after {glue:text}`steps` steps.\n",
        "$$L_D = 1.386$$ and $x = 0.4471$, `lr=3.7e-4`,\n"
        "[arXiv:1406.2661](https://arxiv.org/abs/1406.2661)\n",
        "```python\nprint(87.3)\n```\nA 64x64x3 image, Adam 0.0002, section 5 (2015), batch 128.\n")
    assert hand_typed_numbers(nb, ALLOWED) == []
