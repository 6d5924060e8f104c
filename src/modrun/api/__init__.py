"""HTTP surface of a node: REST, GraphQL, health, metrics."""
