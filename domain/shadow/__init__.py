"""Shadow mode: legacy decisions compared with the tenant's Rego, the routing of traffic to Rego
by steps, and the rule that takes it back to 0 % on its own."""
