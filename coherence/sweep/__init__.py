"""Parameter sweeps, safe operating regions and verified fixes; Dask distributed runs them.

The stages, each a module:

- :mod:`.params`    what can be varied (a spec's ``param`` values and its loops' shaping
                    values: period, delay, window, stabilization, cooldown, tolerance, and
                    state bounds), ``--vary NAME=LO..HI`` with units, the spec with a value
                    changed (as text), the grid and its refinement lattice;
- :mod:`.evaluate`  the verdict of every requirement at a chunk of points: linear verdicts
                    as one batched eigenvalue problem, simulation vectorised over points and
                    input patterns, the formal analysis per point or per box on request;
- :mod:`.dask_engine` where chunks run: in this process, an embedded ``LocalCluster`` or a
                    scheduler's cluster; tasks carry spec text and points, return arrays;
- :mod:`.regions`   rounds of evaluation with refinement where neighbours disagree, the safe
                    region per requirement, boundaries along each axis, the one-line answer;
- :mod:`.fixes`     the nearest one-parameter change that makes a failing requirement hold,
                    re-checked with the full analysis;
- :mod:`.render`    text table, JSON, and the PNG/SVG map of two axes;
- :mod:`.command`   ``coherence sweep``.

Nothing here is imported by ``check`` or ``lint`` unless asked for (Dask and Matplotlib are
imported on first use).
"""
