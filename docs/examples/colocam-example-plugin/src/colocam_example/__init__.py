"""Example colocam plugin: the ``centre-prior`` CAM method and the ``pointing-game`` metric.

Nothing is imported here: ``colocam_example.plugin`` is loaded by every
``colocam`` command, and importing this package must stay cheap.
"""
