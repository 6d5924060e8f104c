"""The node's side of the fleet: join an orchestrator, keep alive, run the
modules it places here."""
