"""The HTTP API (``recsys serve``): the discovery UI's library calls, for programs.

``app.create_app`` builds the FastAPI app; the routes (``routes_catalog``,
``routes_recommend``) translate requests into library calls and their answers into the
pydantic models of ``models``; ``services`` holds what they share; ``access`` checks keys,
``limits`` rates and body sizes, ``observe`` logs and counts requests, ``errors`` turns
every error into JSON with a stable code.
"""
