"""Rules -> plan: module facts, compiled predicates, globs, the resolution order, ``ShardPlan`` and its views.

Never parses rule text itself (that is ``grammar``), never touches weights, a process group or a device.
Imports only ``grammar``, ``rules`` and ``errors``; never ``loader``, ``runner``, ``lint`` or the commands.
"""
