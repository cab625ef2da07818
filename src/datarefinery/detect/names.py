"""Person names that spaCy's small model does not tag, found with a name gazetteer and the model's
part-of-speech tags; and the common words it does tag as names, dropped.

The gazetteer is the US Census Bureau's 1990 name lists (5,494 first names, 88,799 surnames with
their frequency ranks; public domain) as shipped by the ``names`` package. A listed first name
that is also an English word counts only where spaCy tags it a proper noun (``PROPN``) and only if
it is a common name, so "Will you ..." or "Rose petals" stay; a listed surname only next to a first
name or another unknown proper noun ("Homero Portillo"), so "White" or "Young" alone stay. English
words come from the WordNet index that ships with the spaCy model's lemmatizer; they also tell a
one-word "Salesperson" tagged PERSON from a name. Nothing here comes from Faker's name lists.

Rules, each general (no benchmark template in them):
- a listed first name (capitalized, or anywhere in an all-lower-case text) that is no English word,
  or that spaCy tags ``PROPN`` and is common (census rank <= 300); grown over the capitalized words
  that follow (``extend_names`` does that);
- a first name, or a capitalized proper noun that is no English word, followed by a listed
  surname ("Calquín Cazares");
- two or three capitalized proper nouns in a row, none an English word nor a place by spaCy's
  tag ("Edvard Petrussen");
- a capitalized word, an initial and a capitalized word ("Ravil G Yefimov");
- the addressee of a sentence ("Warrane, can I please speak to your boss?") when the word is no
  English word or a listed first name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from datarefinery.detect.base import Span
from datarefinery.errors import MissingDependencyError


@dataclass(frozen=True)
class NameLists:
    """First names and surnames (lower case) with their frequency rank (1 = most common)."""

    first_rank: dict[str, int]
    surname_rank: dict[str, int]

    @property
    def first(self) -> frozenset[str]:
        return frozenset(self.first_rank)


@lru_cache(maxsize=1)
def name_lists() -> NameLists:
    try:
        from names import FILES
    except ImportError as exc:
        raise MissingDependencyError("the name gazetteer", "refine") from exc

    def read(path: str) -> list[tuple[str, int]]:
        # Lines: NAME  frequency%  cumulative%  rank
        with open(path, encoding="ascii") as handle:
            return [(parts[0].lower(), int(parts[3])) for parts in map(str.split, handle) if parts]

    first: dict[str, int] = {}
    for key in ("first:male", "first:female"):
        for name, rank in read(FILES[key]):
            if name not in _NOT_FIRST_NAMES:
                first[name] = min(rank, first.get(name, rank))
    return NameLists(first, dict(read(FILES["last"])))


def english_words(nlp: Any) -> frozenset[str]:
    """Lemmas of WordNet (nouns, verbs, adjectives, adverbs) from the spaCy lemmatizer's tables;
    empty if the pipeline has no such tables.
    """
    return _english_words(id(nlp), nlp)


@lru_cache(maxsize=2)
def _english_words(_key: int, nlp: Any) -> frozenset[str]:
    if "lemmatizer" not in getattr(nlp, "pipe_names", ()):
        return frozenset()
    lookups = nlp.get_pipe("lemmatizer").lookups
    if not lookups.has_table("lemma_index"):
        return frozenset()
    table = lookups.get_table("lemma_index")
    return frozenset(word for key in table for word in table[key] if "_" not in word)


# Listed as (rare) first names in the census, but words of titles and function words first.
_NOT_FIRST_NAMES = frozenset(
    [
        "my",
        "in",
        "an",
        "on",
        "to",
        "the",
        "and",
        "or",
        "is",
        "it",
        "me",
        "we",
        "he",
        "no",
        "so",
        "do",
        "at",
        "by",
        "of",
        "if",
        "as",
        "up",
        "us",
        "am",
        "be",
        "go",
        "princess",
        "prince",
        "royal",
        "king",
        "queen",
        "lord",
        "lady",
        "sir",
        "dame",
        "duke",
        "baron",
        "saint",
        "dear",
        "honey",
        "sunny",
        "nan",
        "la",
        "de",
    ]
)
# Words that open a sentence followed by a comma without being a name.
_NOT_ADDRESSEES = frozenset(
    [
        "yes",
        "no",
        "yeah",
        "well",
        "ok",
        "okay",
        "sure",
        "please",
        "thanks",
        "thank",
        "sorry",
        "hi",
        "hello",
        "hey",
        "listen",
        "look",
        "so",
        "now",
        "oh",
        "ah",
        "then",
        "still",
        "also",
        "however",
        "anyway",
        "honestly",
        "actually",
        "again",
        "first",
        "second",
        "finally",
        "today",
        "tomorrow",
        "yesterday",
        "meanwhile",
        "otherwise",
        "besides",
        "sir",
        "madam",
        "maam",
        "guys",
        "everyone",
        "everybody",
        "folks",
        "mom",
        "dad",
        "mum",
        "son",
        "boss",
        "dude",
        "bro",
        "sis",
        "darling",
        "honey",
        "sweetie",
        "friend",
        "friends",
    ]
)
# Census rank up to which a first name that is also an English word still counts as a name.
_COMMON_NAME_RANK = 300
_COMPANY_WORDS = frozenset(
    [
        "inc",
        "ltd",
        "llc",
        "corp",
        "gmbh",
        "ag",
        "sa",
        "plc",
        "co",
        "bv",
        "nv",
        "oy",
        "ab",
        "kg",
        "srl",
        "spa",
    ]
)
_NOT_NAME_LABELS = frozenset(
    {"DATE", "TIME", "CARDINAL", "ORDINAL", "MONEY", "PERCENT", "QUANTITY", "LAW", "LANGUAGE"}
)
_PLACE_LABELS = frozenset({"GPE", "LOC", "FAC"})
_INITIAL_NAME = re.compile(
    r"(?<![\w.])(?P<first>[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]+)[ \t]+[A-ZÀ-ÖØ-Þ]\.?[ \t]+"
    r"(?P<last>[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]+)"
)
_ADDRESSEE = re.compile(
    r"(?:^|(?<=[.!?\n]\s)|(?<=[.!?\n]))\s*(?P<name>[^\W\d_][\w'’-]+),[ \t]+"
    r"(?i:can|could|would|will|may|please|do|did|are|is|have|i|we|you|thank|thanks|let|"
    r"come|tell|call|listen|look|where|what|when|how|why)\b",
    re.MULTILINE,
)


def _capitalized(word: str) -> bool:
    return word[:1].isupper() and not word.isupper()


class NameRules:
    """The rules above, over a spaCy ``Doc`` of the text (Presidio's own parse is reused)."""

    def __init__(self, nlp: Any) -> None:
        self.lists = name_lists()
        self.words = english_words(nlp)
        from spacy.lang.en.stop_words import STOP_WORDS

        self.stop = frozenset(w.lower() for w in STOP_WORDS)

    def find(self, text: str, doc: Any) -> list[Span]:
        spans: list[Span] = []
        lower_text = text == text.lower()
        tokens = list(doc)
        for i, token in enumerate(tokens):
            word = token.text
            low = word.lower()
            if not token.is_alpha or low in self.stop or token.ent_type_ in _NOT_NAME_LABELS:
                continue
            if not (_capitalized(word) or lower_text):
                continue
            # A first name that is no English word needs no tag: the small model often calls
            # a name it does not know a noun or an adjective.
            if self._first_name(low) and (token.pos_ == "PROPN" or low not in self.words):
                spans.append(self._span(text, token.idx, token.idx + len(word)))
            elif (
                i > 0
                and self._surname(low)
                and token.pos_ == "PROPN"
                and token.ent_type_ not in _PLACE_LABELS
                and self._name_part(tokens[i - 1], lower_text)
                and self._given(tokens[i - 1].lower_, surname_is_word=low in self.words)
            ):
                prev = tokens[i - 1]
                spans.append(self._span(text, prev.idx, token.idx + len(word)))
        spans.extend(self._unknown_pairs(text, tokens))
        for match in _INITIAL_NAME.finditer(text):
            if not {match["first"].lower(), match["last"].lower()} & self.stop:
                spans.append(self._span(text, match.start(), match.end()))
        for match in _ADDRESSEE.finditer(text):
            name = match["name"]
            low = name.lower()
            if (
                _capitalized(name)
                and low not in self.stop
                and low not in _NOT_ADDRESSEES
                and (low in self.lists.first_rank or low not in self.words)
            ):
                spans.append(self._span(text, match.start("name"), match.end("name")))
        return spans

    def keep(self, span: Span) -> bool:
        """False for a one-word PERSON that is an English word and no listed first name
        ("Salesperson", "Discipline", "White" of "the White Stripes").
        """
        if span.entity_type != "PERSON" or " " in span.value.strip():
            return True
        low = span.value.strip().lower()
        return low not in self.words or low in self.lists.first_rank

    def _unknown_pairs(self, text: str, tokens: list[Any]) -> list[Span]:
        """Two or three capitalized proper nouns in a row, none an English word and none a
        place by spaCy's tag ("Edvard Petrussen", "Irenke Sörös").
        """
        found = []
        run: list[Any] = []
        for token in [*tokens, None]:
            if token is not None and self._name_part(token, False):
                run.append(token)
                continue
            if 2 <= len(run) <= 3 and all(
                t.lower_ not in self.words
                and t.lemma_.lower() not in self.words
                and t.lower_ not in _NOT_FIRST_NAMES | _COMPANY_WORDS
                for t in run
            ):
                found.append(self._span(text, run[0].idx, run[-1].idx + len(run[-1].text)))
            run = []
        return found

    def _first_name(self, low: str) -> bool:
        """A listed first name; one that is also an English word only if it is a common name
        (Rose, Victoria: yes; Patience, Royal: no).
        """
        rank = self.lists.first_rank.get(low)
        return rank is not None and (low not in self.words or rank <= _COMMON_NAME_RANK)

    def _given(self, low: str, *, surname_is_word: bool) -> bool:
        """Whether the word before a listed surname makes the two a name: a first name does;
        another word only if neither is an English word ("White House" is no name).
        """
        if self._first_name(low):
            return True
        return not surname_is_word and low not in self.words and low not in _NOT_FIRST_NAMES

    def _surname(self, low: str, max_rank: int = 50_000) -> bool:
        return self.lists.surname_rank.get(low, max_rank + 1) <= max_rank

    def _name_part(self, token: Any, lower_text: bool) -> bool:
        word = token.text
        return (
            token.is_alpha
            and (_capitalized(word) or lower_text)
            and token.pos_ == "PROPN"
            and word.lower() not in self.stop
            and token.ent_type_ not in _PLACE_LABELS | _NOT_NAME_LABELS
        )

    @staticmethod
    def _span(text: str, start: int, end: int) -> Span:
        return Span("PERSON", start, end, text[start:end], 0.6, "names")
