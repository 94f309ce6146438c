"""The bot's optional HTTP side (health, metrics, Magic Hour webhooks); no Discord in here."""
