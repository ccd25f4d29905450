"""fragmenty-alerts: saved rules delivered to Telegram, webhooks, Apprise URLs and Atom feeds."""
