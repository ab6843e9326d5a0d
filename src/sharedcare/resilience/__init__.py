"""Keeping the record served through crashes, outages, overload and upgrades: consistency checks, backups, the
continuity replica, Subscription notifications, metrics and structured logs."""
