"""Delivery: the outbox drained into chats through each platform's backend (`notifier`), paced within the
platforms' limits (`pacing`)."""
