"""Build-time code: computes data files shipped in ``simharps/data`` (run by ``scripts/``); never imported at run time."""
