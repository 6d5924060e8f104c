"""HTTP plumbing every server part uses: raw ASGI bodies and answers, refusals,
blob downloads, shared query parameters and the pooled client to nodes."""
