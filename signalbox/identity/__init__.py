"""Identity: identifiers, deterministic stitching, the merge log and the merge-review queue."""
