"""Rendering reports and exports outside the core: terminal, HTML, CSV and JSON."""
