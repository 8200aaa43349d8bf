"""The catalog database: schema, engine and sessions, queries and bulk loading."""
