"""``detox_rewrite``: rewrite toxic records to be polite while keeping their meaning, verified.

Records scored below ``threshold`` pass unchanged (with their score). A toxic record is rewritten
by the model; the rewrite must score below the threshold (and below the original) and keep the
meaning: embedding cosine to the original >= ``min_similarity`` (all-MiniLM-L6-v2). A failed check
is re-asked with what failed; after ``max_reasks`` the record is rejected with the reason
(``still_toxic`` or ``meaning_lost``), never emitted toxic.

``scorer``: ``profanity`` (alt-profanity-check, offline, vocabulary-based), ``llm`` (the run's
model as a judge, none/mild/severe -> 0/0.5/1), or ``both`` (the higher of the two).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import Field

from datarefinery.detect.toxicity import LLMToxicityJudge, ProfanityScorer
from datarefinery.embeddings import Embedder
from datarefinery.errors import RequestRejectedError
from datarefinery.llm.base import Message
from datarefinery.prompts.render import load_template
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import LLMCall, Output, StepContext
from datarefinery.steps.refine.text_field import TextStepConfig, text_or_rejection, with_text
from datarefinery.steps.refine.verified_rewrite import VerifiedRewrite, chunk_limit


class DetoxRewriteConfig(TextStepConfig):
    scorer: Literal["profanity", "llm", "both"] = "profanity"
    threshold: float = Field(default=0.5, gt=0, le=1, description="toxic at or above this score")
    min_similarity: float = Field(
        default=0.6, ge=-1, le=1, description="embedding cosine to the original a rewrite keeps"
    )
    max_reasks: int = Field(default=1, ge=0, le=5)
    model_max_chars: int | None = Field(
        default=None,
        ge=1,
        description="longer toxic texts are rejected (too_long_for_model); by default, what the "
        "model's context holds (no limit for a server)",
    )
    template: str = "detox_rewrite"
    temperature: float | None = Field(default=0.3, ge=0, le=2)


class DetoxRewrite(VerifiedRewrite[DetoxRewriteConfig]):
    name = "detox_rewrite"
    Config = DetoxRewriteConfig

    def writes(self, task: object) -> set[str]:
        return {self.config.field}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.template = load_template(self.config.template)
        self.profanity = ProfanityScorer()
        self.embedder = Embedder()
        self.judge = (
            LLMToxicityJudge(ctx.require_engine()) if self.config.scorer != "profanity" else None
        )

    def _call(
        self, record: Record, messages: tuple[Message, ...], text: str, attempt: int
    ) -> LLMCall[Any]:
        return self.rewrite_call(record, messages, text, attempt, self.config.temperature)

    async def toxicity(self, text: str, key: object) -> float:
        """The configured score of ``text``; an unanswered judge counts as toxic (1.0)."""
        scores = []
        if self.config.scorer in ("profanity", "both"):
            scores.extend(await asyncio.to_thread(self.profanity.score, [text]))
        if self.judge is not None:
            judged = await self.judge.score_one(text, seed=self.ctx.call_seed("judge", key))
            scores.append(1.0 if judged is None else judged)
        return max(scores)

    async def refine(self, record: Record) -> Output:
        text, rejected = text_or_rejection(record, self.config, self.ctx.name)
        if rejected is not None:
            return rejected
        assert text is not None
        before = await self.toxicity(text, (record.id, "input"))
        if before < self.config.threshold:
            return self._emit(record, text, text, before, before, 1.0, 0)
        engine = self.ctx.require_engine()
        messages = self.template.render(text=text)
        limit = self.config.model_max_chars or chunk_limit(
            engine, self.config.max_chars, sum(len(m.content) for m in messages) - len(text)
        )
        if len(text) > limit:
            detail = f"{len(text):,} characters; the model limit is {limit:,} (raise llm.n_ctx)"
            return Rejected(record, self.ctx.name, "too_long_for_model", detail)
        problem = ("invalid_reply", "")
        for attempt in range(self.config.max_reasks + 1):
            call = self._call(record, messages, text, attempt)
            try:
                result = await engine.complete_structured(call.request, call.reply_model)
            except RequestRejectedError as exc:
                return Rejected(record, self.ctx.name, "backend_refused", str(exc))
            if result.value is None:
                failure = result.failure
                reason = failure.reason if failure else "invalid_reply"
                detail = (
                    f"{failure.message if failure else ''}; last reply {result.raw_text[:300]!r}"
                )
                return Rejected(record, self.ctx.name, reason, detail)
            rewrite = str(result.value.text)
            after = await self.toxicity(rewrite, (record.id, attempt))
            vectors = await asyncio.to_thread(self.embedder.encode, [text, rewrite])
            similarity = float(vectors[0] @ vectors[1])
            if after < min(self.config.threshold, before) and (
                similarity >= self.config.min_similarity
            ):
                return self._emit(record, text, rewrite, before, after, similarity, attempt + 1)
            if after >= min(self.config.threshold, before):
                problem = (
                    "still_toxic",
                    f"toxicity {after:.2f} (threshold {self.config.threshold})",
                )
                ask = "Your rewrite is still rude or obscene. Remove every swear word and insult."
            else:
                problem = (
                    "meaning_lost",
                    f"similarity {similarity:.2f} < {self.config.min_similarity}",
                )
                ask = "Your rewrite lost the meaning. Keep what the text says; only make it polite."
            messages = (
                *call.request.messages,
                Message("assistant", result.raw_text),
                Message("user", f'{ask} Answer again with only the JSON object {{"text": ...}}.'),
            )
        return Rejected(record, self.ctx.name, problem[0], problem[1])

    def _emit(
        self,
        record: Record,
        text: str,
        output: str,
        before: float,
        after: float,
        similarity: float,
        attempts: int,
    ) -> Record:
        from datarefinery.text import token_f1, words_and_marks

        return with_text(
            record,
            self.config.field,
            output,
            step=self.ctx.name,
            technique="gdr_detox" if attempts else "unchanged",
            model=self.ctx.require_engine().model_identity if attempts else None,
            template_hash=self.template.hash if attempts else None,
            conditioning={"scorer": self.config.scorer},
            scores={
                "toxicity_before": round(before, 4),
                "toxicity_after": round(after, 4),
                "similarity_to_input": round(similarity, 4),
                "token_f1_to_input": round(
                    token_f1(words_and_marks(text), words_and_marks(output)), 4
                ),
                "attempts": attempts,
            },
        )
