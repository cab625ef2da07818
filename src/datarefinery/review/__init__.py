"""The local review page (``refinery review OUT``): people accept, correct, edit or reject a run's
records, most uncertain first; their decisions go to ``OUT/review/decisions.sqlite``.

Needs the ``review`` extra (Starlette, uvicorn); ``load`` and ``queue`` need only the core.
"""
