"""Payment providers: each one folder, each only moving money and telling the core what happened.

What a payment means for an order (fulfil, refund, revoke) is decided in `bot/payments.py`;
a provider never imports the marketplace object, only the ports it is given."""
