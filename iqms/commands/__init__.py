"""The ``iqms`` command groups, one module per group."""
