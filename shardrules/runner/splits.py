"""How the work of a denoising step is split across ranks, in one place (the runner, the pipeline adapter and the
command line take their names from here; no torch import, so the command line parses without it).

- ``guidance``: the guided and unguided forwards run on different ranks;
- ``batch``: each rank computes its share of the batch;
- ``none``: every rank computes everything (FSDP2 still shards the weights);
- ``auto``: the runner chooses (guidance when guided, else batch when the batch covers the ranks).
"""

RUNNER_SPLITS = ("auto", "guidance", "batch", "none")
# A pipeline's own loop batches its guided and unguided branches into one forward: only the batch can be split.
PIPELINE_SPLITS = ("none", "batch")
