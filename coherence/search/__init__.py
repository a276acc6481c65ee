"""Simulation-based search: input patterns, optimisers over input sequences, and the
conflict witnesses they find. NumPy only: nothing here calls a solver, and everything it
returns is a simulator run."""
