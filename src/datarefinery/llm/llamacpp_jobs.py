"""What a caller hands the batched llama.cpp decoder, and what it gets back."""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from datarefinery.llm.base import FinishReason, Request, Usage


@dataclass
class Generation:
    """What the decoder returns for one request."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    latency_s: float


@dataclass
class Job:
    """A queued request: ``started`` resolves when a slot takes it, ``future`` with its reply."""

    request: Request
    future: Future[Generation]
    started: Future[None] = field(default_factory=Future)
    queued: float = field(default_factory=time.perf_counter)
