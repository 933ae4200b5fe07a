"""Running the bot: the composition root that builds everything from config (bootstrap), the
timers that wake the sweeps (timers), the admin command-line tools (admin_cli) and the demo
marketplace (demo_data)."""
