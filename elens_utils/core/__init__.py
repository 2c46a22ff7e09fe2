"""The foundation: the error type, atomic files, thread settings, token text, transformers compatibility, provenance."""
