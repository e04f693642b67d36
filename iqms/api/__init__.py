"""The HTTP face of IQMS (``iqms serve``): a thin layer of routes and pages over the core services.

Import :func:`iqms.api.app.create_app` for the application; this package
itself imports nothing, so :mod:`iqms.api.client` stays free of the server's
libraries.
"""
