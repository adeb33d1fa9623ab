"""Where work runs: a local Ray that outlives one command (:mod:`.head`)."""
