"""coherence: model checker and control-theory analyzer for the feedback loops of AI inference fleets."""

__version__ = "0.1.0"
