"""Chat platform adapters behind one contract (`Backend`), like Errbot's backends."""
