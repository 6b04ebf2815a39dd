"""Pure ingest logic: mapping, validation, signatures, limits. No I/O frameworks here."""
