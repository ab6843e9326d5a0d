"""Bulk data: `sharedcare import` (NDJSON and Bundle files, resumable), `$export` jobs writing NDJSON per type and
`$import` jobs feeding the same loader."""
