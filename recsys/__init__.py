"""recsys: music recommendation and playlist discovery.

The library: catalog database, ingestion primitives, models, vector store and
recommenders. It imports without a CLI framework, Streamlit or a live server;
``pipelines`` (jobs and the ``recsys`` command) and ``ui`` build on it.
"""

__version__ = "0.1.0"
