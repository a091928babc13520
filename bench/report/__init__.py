"""Reports built from metrics files: tables now (``tables.py``), figures later."""
