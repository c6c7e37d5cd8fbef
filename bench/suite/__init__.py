"""The macro bench suite behind `make bench` (entry point: bench/run_all.py).

scenarios  what is measured and the client command for it
servers    every server measured, and the plan of which runs what
runner     runs the plan: fresh server per job and repeat, bounded, results collected
targets    issue 14's (and 12's) targets on the run's medians
profiling  py-spy on hero-fast where a target was missed; summaries in bench/profiles/
report     bench/RESULTS.md and the summary shared with docs/benchmarks.md
chart      bench/chart.png
issue12    the history and recovery benches, prepared before the feature lands
privateredis  the redis-server the Redis rows share

The modules import serverproc from bench/macro, which run_all.py puts on sys.path.
"""
