"""The composition root: the `enerbox` command, the registry of services, the whole
configuration (every service's section), its cross-references, and the generated docs.

The one package that imports every service; ``services.core`` imports none.
"""
