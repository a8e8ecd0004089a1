"""asv benchmarks for convbench (see ``asv.conf.json`` and ``convbench asv``)."""
