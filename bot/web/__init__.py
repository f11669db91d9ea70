"""Our HTTP servers (Slack HTTP mode, the Telegram webhook, /healthz and /metrics), hardened alike: `server` holds
the guarded server (time-outs, a connection cap, a body limit, counted refusals), `slack_gate` what a Slack request
must pass before Bolt parses it (signature, shape, replay), `telegram_webhook` the Telegram webhook endpoint."""
