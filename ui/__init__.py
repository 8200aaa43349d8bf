"""The Streamlit discovery UI: thin pages over the library (``recsys ui`` serves it)."""
