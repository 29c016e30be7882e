"""From rules to a plan, a sharded model and a denoising run. Never parses text itself."""
