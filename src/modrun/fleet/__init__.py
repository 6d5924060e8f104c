"""What the agent and the orchestrator share, below both: the SilverLine protocol and
topics, labels, deployment group names, GraphQL root fields and the embedded broker's ACL."""
