"""RedPajama-V2 quality signals as pure functions over a document's shared views (no Beam here)."""
