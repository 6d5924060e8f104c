"""The orchestrator: SilverLine's control plane over MQTT, its REST metadata
API, placement, liveness and failover, and a gateway in front of the fleet."""
