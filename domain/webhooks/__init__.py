"""Webhooks: a tenant's HTTP endpoint that receives signed events (`aggregate`), the addresses it
may target (`targets`) and the signature its deliveries carry (`signature`)."""
