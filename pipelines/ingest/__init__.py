"""Ingestion: source parsers that hand normalised frames to the catalog's bulk loader."""
