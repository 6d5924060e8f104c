"""What functions can reach: HTTP APIs, SQL databases and Dgraph, as the manifest declares."""
