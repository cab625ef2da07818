"""Street addresses and postal boxes, which Presidio has no recognizer for.

Addresses have no checksum, so the patterns need an anchor to stay precise: a street-type word
(``Street``, ``Ave``, ``-gatan``, ``-vej``, ``Rue``...), a postal-box form (``P.O. Box``, ``PSC``,
``Unit .. Box``, military ``APO/FPO/DPO``), or an address cue before it (``address``,
``meet me at``...). A match then extends over what usually follows on the same address: unit
(``Apt.``, ``Suite``), city, region and postal code, across commas and line breaks.

Where the rules come from (the presidio_pii benchmark's TEST split is never a source; its
validation split is, and tests/detect/test_decontamination.py checks that no test value is here):
- street types: USPS Publication 28 (Postal Addressing Standards), appendix C1, for English; for
  other languages, words listed in libpostal's street-type dictionaries
  (github.com/openvenues/libpostal, resources/dictionaries/<language>/street_types.txt), or seen
  in the validation split (``-hove``, ``-vænget``, ``Quadra``), with the definite forms of listed
  words (``-vejen``, ``-torget``);
- unit designators: Publication 28, appendix C2 (``Apt``, ``Suite``, ``Unit``, ``Fl``, and ``#``
  where the designator is unknown);
- military addresses: Publication 28, section 225 (line 2 ``PSC``/``CMR``/``UNIT`` nnnn ``BOX``
  nnnn or a ship's name, last line ``APO``/``FPO``/``DPO`` + ``AA``/``AE``/``AP`` + ZIP Code);
- cues and the number-words-number shape: the validation split.
"""

from __future__ import annotations

import re

from datarefinery.detect.base import Span, resolve_overlaps

# USPS street suffixes (the common part of Publication 28, C1) and their usual abbreviations, and
# the British types of libpostal's English list (close, parade, rise, wharf, yard).
_EN_SUFFIXES = (
    "alley|annex|arcade|ave|avenue|bay|bayou|beach|bend|bluffs?|blvd|boulevard|branch|bridge|"
    "brook|brooks|burgs?|bypass|camp|canyon|cape|causeway|cent(?:er|re)s?|circles?|cir|cliffs?|"
    "club|common|corners?|course|courts?|coves?|creek|crescent|crest|crossing|ct|curve|dale|dam|"
    "divide|dr|drives?|estates?|expressway|extensions?|falls?|ferry|fields?|flats?|fords?|forest|"
    "forges?|forks?|fort|freeway|gardens?|gateway|glens?|greens?|groves?|harbors?|haven|heights|"
    "highway|hills?|hollow|hwy|inlet|islands?|isle|junctions?|keys?|knolls?|lakes?|land|landing|"
    "lane|ln|lights?|loaf|locks?|lodge|loop|mall|manors?|meadows?|mews|mills?|mission|motorway|"
    "mount|mountains?|neck|orchard|oval|overpass|park|parks|parkways?|pass|passage|path|pike|"
    "pines?|pl|place|plains?|plaza|points?|ports?|prairie|radial|ramp|ranch|rapids?|rd|rest|"
    "ridges?|river|road|roads|route|row|rue|run|shoals?|shores?|skyway|springs?|spurs?|squares?|"
    "st|station|stravenue|stream|streets?|summit|terrace|throughway|trace|track|trafficway|"
    "trail|trailer|tunnel|turnpike|underpass|unions?|valleys?|via|viaduct|views?|villages?|"
    "ville|vista|walks?|wall|way|ways|wells?|close|parade|rise|wharf|yard|"
    # the same as separate words in other languages (Koepenicker Str. 74, Árpád fejedelem útja)
    "str|straße|strasse|útja|utca|gasse|weg|vej|gade|gata|katu|tie|laan|straat|allee"
)
# Street words of other languages, as suffixes of one word (Magasinsgatan, Præstevænget, Harjukuja).
# At least three letters before the suffix: "During 1971" and "Spring 2020" are no streets.
_COMPOUND = (
    r"\w{3,}(?:gatan|gata|gade|gaten|vej|vejen|veien|vegen|vænget|katu|kuja|tie|polku|raitti|"
    r"straße|strasse|str\.|weg|gasse|laan|straat|plein|gracht|hove|stræde|allé|vägen|väg|"
    r"braut|gata|utca|ulica|cesta|tänav|iela|gatve|platz|ring|torget|torv)"
)
_FOREIGN_PREFIX = (
    r"(?:ul\.|ulica|rua|avenida|av\.|calle|carrer|via|viale|piazza|rue|boulevard|bd\.?|place|"
    r"quai|chemin|impasse|allée|route|strada|odos|odós|quadra)"
)
_WORD = r"[^\W\d_][\w'’.-]*"
_NUM = r"\d{1,6}[A-Za-z]?"
# Secondary unit designators of Publication 28, appendix C2 ("#" where the kind is unknown).
_UNIT = (
    r"(?:,?[ \t]*\n?[>?\s]*(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Fl\.?|Floor|#)\s*\d{1,5}[A-Za-z]?)"
)
# City / region / country / postal code parts after the street, on the same line or the next ones
# (the benchmark's addresses are written over several lines: "Street 1\nCity\n, CO\n 12345").
_TAIL_PART = (
    r"(?:(?:[ \t]*\n[>?\s]*|,\s*|[ \t]+)(?:,\s*)?"
    r"(?:[^\W\d_][\w'’.-]*(?:[ \t]+\(?[^\W\d_][\w'’.()-]*){0,3}|\d{3,6}(?:[- ]\d{2,4})?))"
)

_STREET_EN = (
    rf"\b{_NUM}\s+(?:{_NUM}\s+)?(?:{_WORD}\s+){{1,3}}?(?:{_EN_SUFFIXES})\b\.?(?:\s+\d{{1,5}}\b)?"
)
_FOREIGN_STREET = rf"(?:{_COMPOUND}|{_FOREIGN_PREFIX}\s+{_WORD}(?:\s+{_WORD}){{0,2}})"
_STREET_NUMBER_FIRST = (
    rf"\b{_NUM}\s+(?:{_NUM}\s+)?(?:{_WORD}\s+){{0,3}}?{_FOREIGN_STREET}"
    r"(?:\s+\d{1,5}[A-Za-z]?\.?)?"
)
_STREET_NAME_FIRST = (
    rf"\b(?:{_COMPOUND}|{_FOREIGN_PREFIX}\s+{_WORD}(?:\s+{_WORD}){{0,2}})\s+\d{{1,5}}[A-Za-z]?\b\.?"
)
# Publication 28, section 225: the last line of a military address is APO (Army / Air Force), FPO
# (Navy) or DPO (diplomatic), then AA, AE or AP, then the ZIP Code (5 or 9 digits).
_MILITARY = r"[ADF]PO\s+A[AEP]\s+\d{5}(?:-\d{4})?"
_POSTBOX = (
    r"(?:P\.?\s?O\.?\s?Box\s+\d{1,6}|(?:PSC|CMR|Unit)\s+\d{3,5},?\s+Box\s+\d{1,5})"
    rf"(?:\s*\n?\s*{_MILITARY})?"
)
# The line before the military line: a unit (PSC / CMR / UNIT, above) or a ship's name, of one to
# four capitalized words or numbers ("USNV Botolen", "USS Name (CG 12)"); case-sensitive, so the
# words of the sentence before the address stay out.
_MILITARY_UNIT_LINE = re.compile(
    r"(?<![\w'’.-])[A-Z][\w'’.-]*(?:[ \t]+\(?[A-Z0-9][\w'’.-]*\)?){0,3}"
    r"(?:[ \t]*[,\n][ \t]*|[ \t]+)[ADF]PO[ \t]+A[AEP][ \t]+\d{5}(?:-\d{4})?"
)
# A house number, one to four capitalized words and another number ("27534 Þorsteinsgata 63",
# "5638 Aasa 43" in the validation split); capitals checked in code.
_NUMBER_WORDS_NUMBER = re.compile(
    rf"\b\d{{1,6}}\s+(?P<words>{_WORD}(?:\s+{_WORD}){{0,3}})\s+\d{{1,5}}\b\.?"
)
_UNIT_ANCHOR = re.compile(r"\b(?:Apt\.|Apartment|Suite)\s*\d{1,5}\b")

_ANCHORED = re.compile(
    rf"(?:{_POSTBOX}|{_STREET_NAME_FIRST}|{_STREET_NUMBER_FIRST}|{_STREET_EN}|{_MILITARY})",
    re.IGNORECASE,
)
# After an address cue, a number followed by words is an address even without a street word.
# The cues of the validation split ("address", "meet me at", "drops you off at", "taxi to",
# "restaurant is at", "corner of"), the verbs of sending a parcel and "moved to". Cues that only
# the test split has ("located at", "lives at") are left out on purpose: they were fitted to it.
_CUE = re.compile(
    r"(?:address(?:es)?|meet\s+me\s+at|drops?\s+you\s+off\s+at|taxi\s+to|restaurant\s+is\s+at|"
    r"ship(?:ped)?\s+to|deliver(?:ed)?\s+to|send\s+(?:it\s+)?to|moved\s+to|corner\s+of)\b"
    r"[^\n.?!]{0,40}?",
    re.IGNORECASE,
)
_AFTER_CUE = re.compile(rf"\b{_NUM}(?:\s+{_NUM})?(?:\s+{_WORD}){{1,4}}(?:\s+\d{{1,5}}[A-Za-z]?)?")
_TAIL = re.compile(rf"(?:{_UNIT}|{_TAIL_PART}){{0,8}}")
_CORNER = re.compile(
    r"\bcorner\s+of\s+(?P<street>[^\n,]{3,40}?\s+and\s+"
    r"[^\W\d_][\w'’.-]*(?:[ \t]+[^\W\d_][\w'’.-]*){0,2})",
    re.IGNORECASE,
)
_POSTCODE_END = re.compile(r"\d{4,6}(?:[- ]\d{2,4})?$")
_CALENDAR = frozenset(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
)
_FUNCTION_WORDS = frozenset(
    [
        "in",
        "its",
        "at",
        "on",
        "of",
        "to",
        "for",
        "the",
        "a",
        "an",
        "and",
        "or",
        "is",
        "was",
        "are",
        "with",
        "from",
        "by",
        "times",
        "years",
    ]
)
_STOP_WORDS = frozenset(
    [
        "for",
        "and",
        "or",
        "but",
        "please",
        "when",
        "if",
        "because",
        "so",
        "then",
        "this",
        "that",
        "is",
        "was",
        "it",
        "to",
        "with",
        "my",
        "your",
        "his",
        "her",
        "their",
        "our",
        "the",
        "a",
        "an",
        "call",
        "me",
        "you",
        "i",
        "we",
        "they",
        "he",
        "she",
    ]
)


class AddressDetector:
    """Finds street addresses (``STREET_ADDRESS``) and postal / military boxes."""

    name = "address"

    def __init__(self, score: float = 0.75) -> None:
        self.score = score

    def detect(self, text: str) -> list[Span]:
        spans: list[Span] = []
        all_lower = text == text.lower()
        for match in _ANCHORED.finditer(text):
            # "3 times at the park" has a street word but no name: a street has a capital
            # somewhere, unless the whole text is in lower case; "15000 in its mission" starts
            # with a function word, which no street name does.
            words = match.group(0).split()
            if len(words) > 1 and words[1].lower() in _FUNCTION_WORDS:
                continue
            if all_lower or any(c.isupper() for c in match.group(0)):
                spans.append(self._extend(text, match.start(), match.end()))
        for match in _NUMBER_WORDS_NUMBER.finditer(text):
            words = match.group("words").split()
            if all(w[0].isupper() and w.strip(".").lower() not in _CALENDAR for w in words):
                spans.append(self._extend(text, match.start(), match.end()))
        for match in _MILITARY_UNIT_LINE.finditer(text):
            # The APO / FPO / DPO line is the last line of the address: nothing to extend over.
            value = match.group(0)
            spans.append(
                Span("STREET_ADDRESS", match.start(), match.end(), value, self.score, self.name)
            )
        for match in _UNIT_ANCHOR.finditer(text):
            spans.append(self._extend(text, match.start(), match.end()))
        for corner in _CORNER.finditer(text):
            start, end = corner.span("street")
            value = text[start:end]
            spans.append(Span("STREET_ADDRESS", start, end, value, self.score, self.name))
        for cue in _CUE.finditer(text):
            # The first number-led or anchored street shortly after the cue.
            window_end = min(len(text), cue.end() + 60)
            found = [
                m
                for pattern in (_AFTER_CUE, _ANCHORED)
                if (m := pattern.search(text, cue.end(), window_end)) is not None
            ]
            if found:
                first = min(found, key=lambda m: (m.start(), -m.end()))
                spans.append(self._extend(text, first.start(), first.end()))
        return resolve_overlaps([s for s in spans if s.end - s.start >= 4])

    def _extend(self, text: str, start: int, end: int) -> Span:
        """Grow a street match over unit, city, region and postal code, stopping before words
        that start a new clause ("for this card", "and", "please").
        """
        tail = _TAIL.match(text, end)
        if tail is not None and tail.end() > end:
            end = self._trim(text, end, tail.end())
        value = text[start:end].rstrip(" ,.\n\t")
        return Span("STREET_ADDRESS", start, start + len(value), value, self.score, self.name)

    @staticmethod
    def _trim(text: str, street_end: int, tail_end: int) -> int:
        # Cut the tail at the first clause word, then drop dangling separators.
        words = list(re.finditer(r"[^\s,]+", text[street_end:tail_end]))
        end = street_end
        for word in words:
            if word.group(0).lower().strip(".") in _STOP_WORDS:
                break
            end = street_end + word.end()
        return end
