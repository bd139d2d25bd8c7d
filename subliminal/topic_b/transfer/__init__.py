"""Topic B extension: subliminal learning in an LLM end to end (teacher numbers -> student -> preference)."""
