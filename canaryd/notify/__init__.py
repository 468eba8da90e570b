"""Alerts (Slack, MS Teams, Discord, Rocket, Google Chat) and event webhooks, sent in the background so a
slow or broken receiver never delays or fails a canary run."""
