"""The nightly pipeline (``recsys nightly``): new data in, only what changed recomputed, a quality gate, run records, a lock.

``config`` (the TOML definition), ``lock`` (one run at a time), ``steps`` (ingest and
embedding), ``gate`` (refit, evaluate, publish only if not worse), ``encoders``
(the playlist encoder when due), ``vectors`` (the
``tracks`` collection) and ``runner`` (the steps in order, recorded in
``pipeline_run``/``pipeline_step``).
"""
