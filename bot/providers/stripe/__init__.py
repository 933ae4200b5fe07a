"""Card payments through Stripe: Checkout Sessions and refunds (checkout), what an event means for
its order (settle), the signed webhook route (webhook) and the running service with
reconciliation after lost webhooks (service)."""
