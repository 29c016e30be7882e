"""Plan -> sharded, loaded model: build on meta, ``fully_shard``, safetensors reads of each rank's rows, key renames,
pipeline folders.

Never runs a model forward. Imports ``engine`` and below; never ``runner``, ``lint`` or the commands.
"""
