"""MQTT plumbing shared by the orchestrator and the nodes: broker addresses,
a reconnecting client, and the embedded broker for laptops."""
