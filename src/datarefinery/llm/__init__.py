"""LLM engine: backends behind one typed async method, and the engine around them."""

from datarefinery.llm.base import Backend, Message, Request, Response, SamplingParams, Usage
from datarefinery.llm.engine import Engine, EngineStats, StructuredResult
from datarefinery.llm.scripted import ScriptedBackend, schema_reply

__all__ = [
    "Backend",
    "Engine",
    "EngineStats",
    "Message",
    "Request",
    "Response",
    "SamplingParams",
    "ScriptedBackend",
    "StructuredResult",
    "Usage",
    "schema_reply",
]
